package ragcore

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/tenantgate/tenantgate/ragcore/store/graph"
	"github.com/tenantgate/tenantgate/ragcore/store/kv"
	"github.com/tenantgate/tenantgate/ragcore/store/vector"
)

// Mode selects what a query retrieves.
type Mode string

// Query modes, as in LightRAG.
const (
	Naive  Mode = "naive"  // nearest chunks
	Local  Mode = "local"  // nearest entities, their neighbourhood and chunks
	Global Mode = "global" // nearest relations, their endpoints and chunks
	Hybrid Mode = "hybrid" // local and global together
)

// ParseMode checks a mode name; "" means hybrid.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(s)); m {
	case "":
		return Hybrid, nil
	case Naive, Local, Global, Hybrid:
		return m, nil
	}
	return "", fmt.Errorf("ragcore: unknown query mode %q (want naive, local, global or hybrid)", s)
}

// Source is a document a result draws on.
type Source struct {
	DocID string `json:"doc_id"`
	Name  string `json:"name"`
}

// ChunkHit is a retrieved chunk.
type ChunkHit struct {
	ID      string  `json:"id"`
	DocID   string  `json:"doc_id"`
	DocName string  `json:"doc_name"`
	Index   int     `json:"index"`
	Content string  `json:"content"`
	Score   float64 `json:"score"` // cosine similarity (naive) or number of graph elements citing it
}

// EntityHit is a retrieved entity.
type EntityHit struct {
	Name        string  `json:"name"`
	Type        string  `json:"type"`
	Description string  `json:"description"`
	Degree      int     `json:"degree"`
	Score       float64 `json:"score"`
}

// RelationHit is a retrieved relation.
type RelationHit struct {
	Source      string   `json:"source"`
	Target      string   `json:"target"`
	Description string   `json:"description"`
	Keywords    []string `json:"keywords"`
	Weight      float64  `json:"weight"`
	Score       float64  `json:"score"`
}

// Result is a query's answer (when a chat model is configured), the
// retrieved context, and its sources.
type Result struct {
	Query     string        `json:"query"`
	Mode      Mode          `json:"mode"`
	Answer    string        `json:"answer,omitempty"`
	Context   string        `json:"context"`
	Sources   []Source      `json:"sources"`
	Chunks    []ChunkHit    `json:"chunks"`
	Entities  []EntityHit   `json:"entities"`
	Relations []RelationHit `json:"relations"`
}

// Query retrieves context for question in the given mode and, when a chat
// model is configured, answers from it.
func (e *Engine) Query(ctx context.Context, question string, mode Mode) (Result, error) {
	if mode == "" {
		mode = Hybrid
	}
	switch mode {
	case Naive, Local, Global, Hybrid:
	default:
		return Result{}, fmt.Errorf("ragcore: unknown query mode %q", mode)
	}
	res := Result{Query: question, Mode: mode, Sources: []Source{}, Chunks: []ChunkHit{}, Entities: []EntityHit{}, Relations: []RelationHit{}}
	vecs, err := e.cfg.Embedder.Embed(ctx, []string{question})
	if err != nil {
		return res, fmt.Errorf("embed query: %w", err)
	}
	qv := vecs[0]
	var r retrieval
	switch mode {
	case Naive:
		err = e.naive(ctx, qv, &r)
	case Local:
		err = e.local(ctx, qv, &r)
	case Global:
		err = e.global(ctx, qv, &r)
	case Hybrid:
		if err = e.local(ctx, qv, &r); err == nil {
			err = e.global(ctx, qv, &r)
		}
	}
	if err != nil {
		return res, err
	}
	if err := r.finish(ctx, e, &res); err != nil {
		return res, err
	}
	res.Context = renderContext(res)
	if e.cfg.Chat != nil && len(res.Chunks)+len(res.Entities) > 0 {
		res.Answer, err = e.cfg.Chat.Chat(ctx, answerSystem+res.Context, question)
		if err != nil {
			return res, fmt.Errorf("answer: %w", err)
		}
	}
	return res, nil
}

// retrieval accumulates what the modes found.
type retrieval struct {
	chunkScores map[string]float64 // chunk id -> score
	entities    map[string]EntityHit
	relations   map[string]RelationHit
}

// scoreChunk records a chunk found by similarity, keeping its best score.
func (r *retrieval) scoreChunk(id string, score float64) {
	if r.chunkScores == nil {
		r.chunkScores = map[string]float64{}
	}
	r.chunkScores[id] = max(r.chunkScores[id], score)
}

// cite counts one more graph element citing each chunk.
func (r *retrieval) cite(chunkIDs []string) {
	if r.chunkScores == nil {
		r.chunkScores = map[string]float64{}
	}
	for _, id := range chunkIDs {
		r.chunkScores[id]++
	}
}

func (r *retrieval) addEntity(x graph.Entity, score float64) {
	if r.entities == nil {
		r.entities = map[string]EntityHit{}
	}
	if old, ok := r.entities[x.Name]; ok && old.Score >= score {
		return
	}
	r.entities[x.Name] = EntityHit{Name: x.Name, Type: x.Type, Description: x.Description, Degree: x.Degree, Score: score}
	r.cite(x.SourceIDs)
}

// addEndpoint adds an entity found as a relation's endpoint: its own
// chunks are not cited, the relation's are.
func (r *retrieval) addEndpoint(x graph.Entity) {
	if r.entities == nil {
		r.entities = map[string]EntityHit{}
	}
	if _, ok := r.entities[x.Name]; !ok {
		r.entities[x.Name] = EntityHit{Name: x.Name, Type: x.Type, Description: x.Description, Degree: x.Degree}
	}
}

func (r *retrieval) addRelation(x graph.Relation, score float64) {
	if r.relations == nil {
		r.relations = map[string]RelationHit{}
	}
	if old, ok := r.relations[x.ID]; ok && old.Score >= score {
		return
	}
	r.relations[x.ID] = RelationHit{Source: x.Source, Target: x.Target, Description: x.Description, Keywords: x.Keywords, Weight: x.Weight, Score: score}
	r.cite(x.SourceIDs)
}

func (e *Engine) naive(ctx context.Context, qv []float32, r *retrieval) error {
	matches, err := e.cfg.Vectors.Query(ctx, vector.Chunks, qv, e.cfg.TopK)
	if err != nil {
		return err
	}
	for _, m := range matches {
		r.scoreChunk(m.ID, m.Score)
	}
	return nil
}

func (e *Engine) local(ctx context.Context, qv []float32, r *retrieval) error {
	matches, err := e.cfg.Vectors.Query(ctx, vector.Entities, qv, e.cfg.TopK)
	if err != nil || len(matches) == 0 {
		return err
	}
	score := map[string]float64{}
	names := make([]string, len(matches))
	for i, m := range matches {
		names[i], score[m.Ref] = m.Ref, m.Score
	}
	ents, err := e.cfg.Graph.Entities(ctx, names)
	if err != nil {
		return err
	}
	for _, x := range ents {
		r.addEntity(x, score[x.Name])
	}
	rels, err := e.cfg.Graph.Neighbourhood(ctx, names, 2*e.cfg.TopK)
	if err != nil {
		return err
	}
	for _, x := range rels {
		r.addRelation(x, 0)
	}
	return nil
}

func (e *Engine) global(ctx context.Context, qv []float32, r *retrieval) error {
	matches, err := e.cfg.Vectors.Query(ctx, vector.Relations, qv, e.cfg.TopK)
	if err != nil || len(matches) == 0 {
		return err
	}
	score := map[string]float64{}
	relIDs := make([]string, len(matches))
	for i, m := range matches {
		relIDs[i], score[m.ID] = m.ID, m.Score
	}
	rels, err := e.cfg.Graph.Relations(ctx, relIDs)
	if err != nil {
		return err
	}
	var names []string
	for _, x := range rels {
		r.addRelation(x, score[x.ID])
		names = append(names, x.Source, x.Target)
	}
	ents, err := e.cfg.Graph.Entities(ctx, names)
	if err != nil {
		return err
	}
	for _, x := range ents {
		r.addEndpoint(x)
	}
	return nil
}

// finish loads the best chunks and orders everything into res.
func (r *retrieval) finish(ctx context.Context, e *Engine, res *Result) error {
	chunkIDs := make([]string, 0, len(r.chunkScores))
	for id := range r.chunkScores {
		chunkIDs = append(chunkIDs, id)
	}
	sort.Slice(chunkIDs, func(i, j int) bool {
		a, b := chunkIDs[i], chunkIDs[j]
		if r.chunkScores[a] != r.chunkScores[b] {
			return r.chunkScores[a] > r.chunkScores[b]
		}
		return a < b
	})
	chunkIDs = chunkIDs[:min(len(chunkIDs), e.cfg.TopK)]
	texts, err := e.cfg.KV.Get(ctx, kv.Chunks, chunkIDs...)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, id := range chunkIDs {
		var c chunkRecord
		if json.Unmarshal([]byte(texts[id]), &c) != nil {
			continue // vector without text: deleted concurrently
		}
		res.Chunks = append(res.Chunks, ChunkHit{ID: id, DocID: c.DocID, DocName: c.DocName, Index: c.Index, Content: c.Content, Score: r.chunkScores[id]})
		if !seen[c.DocID] {
			seen[c.DocID] = true
			res.Sources = append(res.Sources, Source{DocID: c.DocID, Name: c.DocName})
		}
	}
	res.Entities = append(res.Entities, sortedValues(r.entities)...)
	sort.SliceStable(res.Entities, func(i, j int) bool { return res.Entities[i].Score > res.Entities[j].Score })
	res.Relations = append(res.Relations, sortedValues(r.relations)...)
	sort.SliceStable(res.Relations, func(i, j int) bool {
		a, b := res.Relations[i], res.Relations[j]
		if a.Score != b.Score {
			return a.Score > b.Score
		}
		return a.Weight > b.Weight
	})
	return nil
}

const answerSystem = `You answer questions using only the knowledge base context below.
If the context does not contain the answer, say you do not know. Cite the source documents by name.

`

// renderContext is the retrieved context as text, the way it is given to
// the chat model and printed by the CLI.
func renderContext(res Result) string {
	var b strings.Builder
	if len(res.Entities) > 0 {
		b.WriteString("-----Entities-----\n")
		for _, x := range res.Entities {
			fmt.Fprintf(&b, "- %s (%s, degree %d): %s\n", x.Name, x.Type, x.Degree, oneLine(x.Description))
		}
	}
	if len(res.Relations) > 0 {
		b.WriteString("-----Relationships-----\n")
		for _, x := range res.Relations {
			fmt.Fprintf(&b, "- %s -- %s [%s] (weight %g): %s\n", x.Source, x.Target, strings.Join(x.Keywords, ", "), x.Weight, oneLine(x.Description))
		}
	}
	b.WriteString("-----Sources-----\n")
	for _, c := range res.Chunks {
		fmt.Fprintf(&b, "[%s #%d] %s\n", c.DocName, c.Index, oneLine(c.Content))
	}
	return b.String()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
