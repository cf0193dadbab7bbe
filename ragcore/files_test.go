package ragcore

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestCollectFiles(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"b.md", "a.txt", "img.png", "sub/c.markdown", ".git/d.md", "sub/e.MD"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := CollectFiles([]string{dir, filepath.Join(dir, "img.png")})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a.txt", "b.md", "sub/c.markdown", "sub/e.MD", "img.png"}
	for i := range want {
		want[i] = filepath.Join(dir, want[i])
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("CollectFiles = %v\nwant %v", got, want)
	}
	if _, err := CollectFiles([]string{filepath.Join(dir, "missing")}); err == nil {
		t.Fatal("missing path accepted")
	}
}
