package ragcore

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// DocumentExts are the file name extensions ingested from directories.
var DocumentExts = []string{".md", ".markdown", ".txt"}

// CollectFiles expands paths into the files to ingest: a file is taken as
// it is, a directory contributes its text and markdown files, recursively,
// in lexical order. Hidden directories are skipped.
func CollectFiles(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			out = append(out, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && path != p && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			if !d.IsDir() && slices.Contains(DocumentExts, strings.ToLower(filepath.Ext(path))) {
				out = append(out, path)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("ragcore: %s: %w", p, err)
		}
	}
	return out, nil
}
