package config

import (
	"os"
	"path/filepath"
	"testing"
)

func loadTestdata(t *testing.T, name string, vars map[string]string) *Config {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(data, env(vars))
	if err != nil {
		t.Fatalf("Parse(%s): %v", name, err)
	}
	return cfg
}
