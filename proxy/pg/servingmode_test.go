package pg

import "testing"

// eachServingMode runs f twice: with the engine's event loop serving the
// sessions (where there is one: Linux) and with every session served by its
// own goroutine. mode configures the engine for the run.
func eachServingMode(t *testing.T, f func(t *testing.T, mode func(*Options))) {
	t.Run("event loop", func(t *testing.T) { f(t, func(*Options) {}) })
	t.Run("goroutines", func(t *testing.T) { f(t, func(o *Options) { o.NoEventLoop = true }) })
}

// withMode applies configure, then mode.
func withMode(configure, mode func(*Options)) func(*Options) {
	return func(o *Options) {
		if configure != nil {
			configure(o)
		}
		mode(o)
	}
}
