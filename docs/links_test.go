package docs

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// repoRoot is the repository root, seen from this package's directory.
const repoRoot = ".."

// markdownFiles are the documents whose links are checked: every .md file
// under docs/ and deploy/, and README.md.
func markdownFiles(root string) ([]string, error) {
	files := []string{filepath.Join(root, "README.md")}
	for _, dir := range []string{"docs", "deploy"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if os.IsNotExist(err) && p == filepath.Join(root, dir) {
					return filepath.SkipDir
				}
				return err
			}
			if !d.IsDir() && strings.HasSuffix(p, ".md") {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return files, nil
}

var (
	// [text](target "title") and ![alt](target); target without spaces or
	// in <angle brackets>.
	inlineLink = regexp.MustCompile(`!?\[[^\]]*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+"[^"]*")?\s*\)`)
	// [label]: target
	refLink    = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)`)
	codeSpan   = regexp.MustCompile("`+[^`]*`+")
	schemeLike = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
)

// brokenLinks returns one message per relative link in file that does not
// resolve to an existing path under root. External links (with a scheme)
// and same-document anchors are skipped; fragments are dropped before the
// path is checked. Fenced code blocks and code spans are ignored.
func brokenLinks(root, file string) ([]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	absRoot, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	var out []string
	fence := ""
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) {
				fence = ""
			}
			continue
		}
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			fence = trimmed[:3]
			continue
		}
		line = codeSpan.ReplaceAllString(line, "")
		var targets []string
		for _, m := range inlineLink.FindAllStringSubmatch(line, -1) {
			targets = append(targets, m[1])
		}
		if m := refLink.FindStringSubmatch(line); m != nil {
			targets = append(targets, m[1])
		}
		for _, target := range targets {
			target = strings.Trim(target, "<>")
			if target == "" || strings.HasPrefix(target, "#") || schemeLike.MatchString(target) || strings.HasPrefix(target, "//") {
				continue
			}
			path, _, _ := strings.Cut(target, "#")
			path, _, _ = strings.Cut(path, "?")
			var resolved string
			if strings.HasPrefix(path, "/") {
				resolved = filepath.Join(absRoot, filepath.FromSlash(path))
			} else {
				resolved = filepath.Join(filepath.Dir(file), filepath.FromSlash(path))
			}
			abs, err := filepath.Abs(resolved)
			if err != nil {
				return nil, err
			}
			if rel, err := filepath.Rel(absRoot, abs); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
				out = append(out, fmt.Sprintf("%s:%d: link %q leaves the repository", file, n, target))
				continue
			}
			if _, err := os.Stat(abs); err != nil {
				out = append(out, fmt.Sprintf("%s:%d: link %q: no such file in the repository", file, n, target))
			}
		}
	}
	return out, sc.Err()
}

func TestRelativeLinksResolve(t *testing.T) {
	files, err := markdownFiles(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("found only %v", files)
	}
	for _, file := range files {
		broken, err := brokenLinks(repoRoot, file)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range broken {
			t.Error(b)
		}
	}
}

// TestBrokenLinksAreFound makes sure the checker can fail.
func TestBrokenLinksAreFound(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "docs", "sub"), 0o755))
	must(os.WriteFile(filepath.Join(root, "docs", "exists.md"), []byte("# here\n"), 0o644))
	doc := strings.Join([]string{
		"[ok](exists.md) [ok with anchor](exists.md#here) [dir](sub/) [external](https://example.com/x.md)",
		"[anchor](#local) [root](/docs/exists.md) `[in code](missing-code.md)`",
		"[broken](missing.md) ![image](img/none.png) [out](../../outside.md)",
		"```",
		"[in a fence](fenced-missing.md)",
		"```",
		"[ref]: gone.md",
	}, "\n")
	file := filepath.Join(root, "docs", "test.md")
	must(os.WriteFile(file, []byte(doc), 0o644))
	broken, err := brokenLinks(root, file)
	must(err)
	var got []string
	for _, b := range broken {
		got = append(got, regexp.MustCompile(`link "([^"]+)"`).FindStringSubmatch(b)[1])
	}
	want := []string{"missing.md", "img/none.png", "../../outside.md", "gone.md"}
	if !slices.Equal(got, want) {
		t.Fatalf("broken links = %q, want %q", got, want)
	}
}
