// Package extract finds entities and the relations between them in a chunk
// of text, the raw material of ragcore's knowledge graph.
//
// Extractor is what the pipeline needs. Local is the deterministic default
// that needs no model: entities are capitalised phrases (runs of words that
// start with an upper-case letter, joined by "of", minus leading articles and
// function words, and minus one-word phrases capitalised only because they
// start a sentence), relations are pairs of entities that occur in the same
// sentence, weighted by how many sentences they share, described by that
// sentence and keyed by its most frequent content words. The LLM-based
// extractor in package llm is the option for real models.
package extract

import (
	"context"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Entity is one entity found in a text.
type Entity struct {
	Name        string
	Type        string // organization, person, location, product, or entity
	Description string
}

// Relation is an undirected relation between two entities, Source < Target.
type Relation struct {
	Source, Target string
	Description    string
	Keywords       []string
	Weight         float64
}

// Result is what an extractor found. Entities are sorted by name, relations
// by (Source, Target); every relation endpoint is among the entities.
type Result struct {
	Entities  []Entity
	Relations []Relation
}

// Extractor finds entities and relations in a text.
type Extractor interface {
	Extract(ctx context.Context, text string) (Result, error)
}

// Local is the capitalised-phrase, sentence co-occurrence extractor.
type Local struct{}

const maxDescription = 300

// Extract implements Extractor. It never fails.
func (Local) Extract(_ context.Context, text string) (Result, error) {
	entities := map[string]*Entity{}
	type pair struct{ a, b string }
	relations := map[pair]*Relation{}
	sentences := Sentences(text)
	// A one-word phrase that starts a sentence ("Warehouse automation
	// grows") is capitalised by grammar, not by name: keep it only when the
	// text also capitalises it elsewhere.
	named := map[string]bool{}
	for _, sentence := range sentences {
		for _, p := range phrases(sentence) {
			if !p.initial {
				named[p.name] = true
			}
		}
	}
	for _, sentence := range sentences {
		var names []string
		for _, p := range phrases(sentence) {
			if !p.initial || named[p.name] {
				names = append(names, p.name)
			}
		}
		for _, n := range names {
			if _, ok := entities[n]; !ok {
				entities[n] = &Entity{Name: n, Type: guessType(n), Description: clip(sentence)}
			}
		}
		for i := range names {
			for j := i + 1; j < len(names); j++ {
				a, b := names[i], names[j]
				if b < a {
					a, b = b, a
				}
				p := pair{a, b}
				r, ok := relations[p]
				if !ok {
					r = &Relation{Source: a, Target: b, Description: clip(sentence), Keywords: Keywords(sentence, names, 3)}
					relations[p] = r
				}
				r.Weight++
			}
		}
	}
	var res Result
	for _, e := range entities {
		res.Entities = append(res.Entities, *e)
	}
	for _, r := range relations {
		res.Relations = append(res.Relations, *r)
	}
	sort.Slice(res.Entities, func(i, j int) bool { return res.Entities[i].Name < res.Entities[j].Name })
	sort.Slice(res.Relations, func(i, j int) bool {
		ri, rj := res.Relations[i], res.Relations[j]
		if ri.Source != rj.Source {
			return ri.Source < rj.Source
		}
		return ri.Target < rj.Target
	})
	return res, nil
}

// Sentences splits text into sentences: at . ! ? followed by a space or the
// end, and at line breaks (markdown headings and list items are sentences
// of their own). Markdown markers at the start of a line are dropped.
func Sentences(text string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(line), "#>*-+0123456789.) \t`|"))
		start := 0
		for i, r := range line {
			if r != '.' && r != '!' && r != '?' {
				continue
			}
			next := i + 1
			if next < len(line) && line[next] != ' ' {
				continue
			}
			if s := strings.TrimSpace(line[start:next]); s != "" {
				out = append(out, s)
			}
			start = next
		}
		if s := strings.TrimSpace(line[start:]); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// stop lists words that do not start or make up an entity on their own.
var stop = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`a an the this that these those it its it's they their there then than
		he she we you i our your his her them my me us in on at of for to from by with without and or but
		if when while where what which who whom whose why how as is are was were be been being do does did
		not no yes so all any each every some many most more less other another such only also both either
		neither after before during since until about into onto over under between through per via can
		could should would will may might must shall here now today yesterday tomorrow however therefore
		meanwhile next last first new see note`) {
		stop[w] = true
	}
}

// Phrases returns the capitalised phrases of a sentence, in order of first
// appearance, without duplicates. "of" joins two capitalised runs ("Port of
// Rotterdam").
func Phrases(sentence string) []string {
	var out []string
	for _, p := range phrases(sentence) {
		out = append(out, p.name)
	}
	return out
}

// phrase is a capitalised phrase; initial marks a one-word phrase that
// starts its sentence.
type phrase struct {
	name    string
	initial bool
}

func phrases(sentence string) []phrase {
	var out []phrase
	seen := map[string]bool{}
	var cur []string
	curStart := false // cur began with the sentence's first word
	flush := func() {
		if n := len(cur); n > 0 && cur[n-1] == "of" { // "University of" + non-name
			cur = cur[:n-1]
		}
		dropped := false
		for len(cur) > 0 && stop[strings.ToLower(cur[0])] { // "The Acme Corp" -> "Acme Corp"
			cur, dropped = cur[1:], true
		}
		if len(cur) > 0 {
			name := strings.Join(cur, " ")
			if !seen[name] {
				seen[name] = true
				out = append(out, phrase{name: name, initial: curStart && !dropped && len(cur) == 1})
			}
		}
		cur, curStart = cur[:0], false
	}
	for i, w := range strings.Fields(sentence) {
		core := strings.TrimFunc(w, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
		core = strings.TrimSuffix(strings.TrimSuffix(core, "'s"), "’s")
		switch {
		case core != "" && capitalised(core):
			if len(cur) == 0 {
				curStart = i == 0
			}
			cur = append(cur, core)
		case core == "of" && w == "of" && len(cur) > 0 && cur[len(cur)-1] != "of":
			cur = append(cur, core)
			continue
		default:
			flush()
			continue
		}
		// punctuation after the word ends the phrase: "Acme, Globex"
		if last, _ := utf8.DecodeLastRuneInString(w); !unicode.IsLetter(last) && !unicode.IsDigit(last) {
			flush()
		}
	}
	flush()
	return out
}

func capitalised(w string) bool {
	r, _ := utf8.DecodeRuneInString(w)
	return unicode.IsUpper(r)
}

var typeSuffixes = []struct{ suffix, typ string }{
	{" inc", "organization"}, {" corp", "organization"}, {" corporation", "organization"},
	{" ltd", "organization"}, {" llc", "organization"}, {" labs", "organization"},
	{" group", "organization"}, {" university", "organization"}, {" bank", "organization"},
	{" city", "location"}, {" river", "location"}, {" street", "location"}, {" valley", "location"},
	{" platform", "product"}, {" engine", "product"}, {" app", "product"},
}

func guessType(name string) string {
	l := " " + strings.ToLower(name)
	for _, s := range typeSuffixes {
		if strings.HasSuffix(l, s.suffix) {
			return s.typ
		}
	}
	if strings.HasPrefix(l, " dr ") || strings.HasPrefix(l, " mr ") || strings.HasPrefix(l, " ms ") {
		return "person"
	}
	return "entity"
}

// Keywords returns up to n content words of a sentence that are not part of
// the given entity names, most frequent first, then alphabetical.
func Keywords(sentence string, names []string, n int) []string {
	skip := map[string]bool{}
	for _, name := range names {
		for _, w := range strings.Fields(strings.ToLower(name)) {
			skip[w] = true
		}
	}
	count := map[string]int{}
	for _, w := range strings.FieldsFunc(strings.ToLower(sentence), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	}) {
		if len(w) > 2 && !stop[w] && !skip[w] {
			count[w]++
		}
	}
	words := make([]string, 0, len(count))
	for w := range count {
		words = append(words, w)
	}
	sort.Slice(words, func(i, j int) bool {
		if count[words[i]] != count[words[j]] {
			return count[words[i]] > count[words[j]]
		}
		return words[i] < words[j]
	})
	return words[:min(n, len(words))]
}

func clip(s string) string {
	if len(s) <= maxDescription {
		return s
	}
	cut := maxDescription
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
