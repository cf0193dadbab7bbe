package llm

import (
	"context"
	"sort"
	"strconv"
	"strings"

	"github.com/tenantgate/tenantgate/ragcore/extract"
)

// Extractor is an extract.Extractor that asks the chat model, with a
// LightRAG-style prompt and record format.
type Extractor struct{ Client *Client }

const (
	tupleSep  = "<|>"
	recordSep = "##"
	doneMark  = "<|COMPLETE|>"
)

const extractSystem = `You extract a knowledge graph from text.
Identify every named entity (organization, person, location, product, event, concept) and every pair of entities that are clearly related.
Output one record per entity as ("entity"<|>NAME<|>TYPE<|>DESCRIPTION)
and one record per relation as ("relationship"<|>SOURCE<|>TARGET<|>DESCRIPTION<|>KEYWORDS<|>STRENGTH)
where KEYWORDS are comma-separated and STRENGTH is a number from 1 to 10.
Separate records with ## and finish with <|COMPLETE|>. Output nothing else.`

// Extract implements extract.Extractor.
func (x Extractor) Extract(ctx context.Context, text string) (extract.Result, error) {
	reply, err := x.Client.Chat(ctx, extractSystem, "Text:\n"+text)
	if err != nil {
		return extract.Result{}, err
	}
	return ParseRecords(reply), nil
}

// ParseRecords reads LightRAG-format records, skipping malformed ones and
// relations whose endpoints are not among the entities.
func ParseRecords(reply string) extract.Result {
	reply = strings.ReplaceAll(reply, doneMark, "")
	entities := map[string]extract.Entity{}
	var rels []extract.Relation
	for _, rec := range strings.Split(reply, recordSep) {
		rec = strings.TrimSpace(rec)
		rec = strings.TrimSuffix(strings.TrimPrefix(rec, "("), ")")
		f := strings.Split(rec, tupleSep)
		for i := range f {
			f[i] = strings.Trim(strings.TrimSpace(f[i]), `"`)
		}
		switch {
		case len(f) == 4 && f[0] == "entity" && f[1] != "":
			entities[f[1]] = extract.Entity{Name: f[1], Type: strings.ToLower(f[2]), Description: f[3]}
		case len(f) == 6 && f[0] == "relationship" && f[1] != "" && f[2] != "" && f[1] != f[2]:
			w, err := strconv.ParseFloat(f[5], 64)
			if err != nil || w <= 0 {
				w = 1
			}
			a, b := f[1], f[2]
			if b < a {
				a, b = b, a
			}
			var kws []string
			for _, k := range strings.Split(f[4], ",") {
				if k = strings.TrimSpace(k); k != "" {
					kws = append(kws, k)
				}
			}
			rels = append(rels, extract.Relation{Source: a, Target: b, Description: f[3], Keywords: kws, Weight: w})
		}
	}
	var res extract.Result
	for _, e := range entities {
		res.Entities = append(res.Entities, e)
	}
	sort.Slice(res.Entities, func(i, j int) bool { return res.Entities[i].Name < res.Entities[j].Name })
	for _, r := range rels {
		if _, ok := entities[r.Source]; !ok {
			continue
		}
		if _, ok := entities[r.Target]; !ok {
			continue
		}
		res.Relations = append(res.Relations, r)
	}
	sort.SliceStable(res.Relations, func(i, j int) bool {
		ri, rj := res.Relations[i], res.Relations[j]
		if ri.Source != rj.Source {
			return ri.Source < rj.Source
		}
		return ri.Target < rj.Target
	})
	return res
}
