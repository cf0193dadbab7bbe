package pg

import "sync"

// maxKnownStatements bounds preparedSet; past it, new statements are not
// remembered (their Parse takes a connection, as any first Parse does).
const maxKnownStatements = 10000

// preparedSet remembers the server statement names (a digest of text and
// parameter types, serverStmtName) that a server connection prepared
// successfully. A client's Parse of one of them, outside a transaction, is
// answered without taking a connection: the statement is prepared on the
// connection the client later binds it on, like any statement that
// connection lacks.
type preparedSet struct {
	mu    sync.Mutex
	names map[string]struct{}
}

func newPreparedSet() *preparedSet { return &preparedSet{names: map[string]struct{}{}} }

func (s *preparedSet) add(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.names) < maxKnownStatements {
		s.names[name] = struct{}{}
	}
}

func (s *preparedSet) has(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.names[name]
	return ok
}
