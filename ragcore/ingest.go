package ragcore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/tenantgate/tenantgate/ragcore/chunk"
	"github.com/tenantgate/tenantgate/ragcore/extract"
	"github.com/tenantgate/tenantgate/ragcore/ids"
	"github.com/tenantgate/tenantgate/ragcore/store/graph"
	"github.com/tenantgate/tenantgate/ragcore/store/kv"
	"github.com/tenantgate/tenantgate/ragcore/store/status"
	"github.com/tenantgate/tenantgate/ragcore/store/vector"
)

// ErrNotFound is returned for an unknown document id.
var ErrNotFound = status.ErrNotFound

// docRecord is a document's value in the KV store.
type docRecord struct {
	Name     string   `json:"name"`
	Content  string   `json:"content"`
	ChunkIDs []string `json:"chunk_ids"`
}

// chunkRecord is a chunk's value in the KV store.
type chunkRecord struct {
	DocID   string `json:"doc_id"`
	DocName string `json:"doc_name"`
	Index   int    `json:"index"`
	Tokens  int    `json:"tokens"`
	Content string `json:"content"`
}

// IngestResult says what Ingest did.
type IngestResult struct {
	DocID     string `json:"doc_id"`
	Name      string `json:"name"`
	Unchanged bool   `json:"unchanged"` // already processed: nothing was done
	Chunks    int    `json:"chunks"`
	Entities  int    `json:"entities"`
	Relations int    `json:"relations"`
}

// Queue records a document as pending, so that the status of a batch shows
// what is still to come; it is a no-op for a document already processed.
// Ingest does the work.
func (e *Engine) Queue(ctx context.Context, name, text string) error {
	if strings.TrimSpace(text) == "" {
		return fmt.Errorf("ragcore: %s: empty document", name)
	}
	docID := ids.Doc(text)
	prev, err := e.cfg.Status.Get(ctx, docID)
	switch {
	case err == nil && prev.State == status.Processed:
		return nil
	case err != nil && !errors.Is(err, status.ErrNotFound):
		return err
	}
	return e.cfg.Status.Put(ctx, status.Doc{ID: docID, Name: name, State: status.Pending, Length: len(text)})
}

// Ingest runs the pipeline on one document: chunk, embed, extract, store.
// The document id is the hash of text, so an unchanged document that was
// processed before is a no-op (Unchanged). A failure is recorded in the
// document's status and returned; ingesting again retries.
func (e *Engine) Ingest(ctx context.Context, name, text string) (IngestResult, error) {
	docID := ids.Doc(text)
	res := IngestResult{DocID: docID, Name: name}
	prev, err := e.cfg.Status.Get(ctx, docID)
	switch {
	case err == nil && prev.State == status.Processed:
		res.Name, res.Unchanged = prev.Name, true
		res.Chunks, res.Entities, res.Relations = prev.Chunks, prev.Entities, prev.Relations
		e.progress("%s: unchanged (%s)", name, docID)
		return res, nil
	case err != nil && !errors.Is(err, status.ErrNotFound):
		return res, err
	}
	if strings.TrimSpace(text) == "" {
		return res, fmt.Errorf("ragcore: %s: empty document", name)
	}
	st := status.Doc{ID: docID, Name: name, State: status.Processing, Length: len(text)}
	if err := e.cfg.Status.Put(ctx, st); err != nil {
		return res, err
	}
	err = e.ingest(ctx, &st, text)
	if err != nil {
		st.State, st.Error = status.Failed, err.Error()
	} else {
		st.State, st.Error = status.Processed, ""
	}
	if perr := e.cfg.Status.Put(ctx, st); perr != nil {
		err = errors.Join(err, perr)
	}
	res.Chunks, res.Entities, res.Relations = st.Chunks, st.Entities, st.Relations
	return res, err
}

// ingest does the work of Ingest, filling st's counts.
func (e *Engine) ingest(ctx context.Context, st *status.Doc, text string) error {
	chunks, err := chunk.Split(text, e.cfg.Chunk)
	if err != nil {
		return err
	}
	chunkIDs := make([]string, len(chunks))
	values := map[string]string{}
	texts := make([]string, len(chunks))
	for i, c := range chunks {
		chunkIDs[i] = ids.Chunk(st.ID, c.Text)
		texts[i] = c.Text
		values[chunkIDs[i]] = mustJSON(chunkRecord{DocID: st.ID, DocName: st.Name, Index: c.Index, Tokens: c.Tokens, Content: c.Text})
	}
	st.ChunkIDs, st.Chunks = chunkIDs, len(chunks)
	if err := e.cfg.KV.Put(ctx, kv.Docs, map[string]string{st.ID: mustJSON(docRecord{Name: st.Name, Content: text, ChunkIDs: chunkIDs})}); err != nil {
		return err
	}
	if err := e.cfg.KV.Put(ctx, kv.Chunks, values); err != nil {
		return err
	}
	e.progress("%s: %d chunks", st.Name, len(chunks))

	vecs, err := e.cfg.Embedder.Embed(ctx, texts)
	if err != nil {
		return fmt.Errorf("embed chunks: %w", err)
	}
	recs := make([]vector.Record, len(chunks))
	for i := range chunks {
		recs[i] = vector.Record{ID: chunkIDs[i], Ref: st.ID, Content: texts[i], Vector: vecs[i]}
	}
	if err := e.cfg.Vectors.Upsert(ctx, vector.Chunks, recs); err != nil {
		return err
	}
	e.progress("%s: embedded %d chunks", st.Name, len(chunks))

	entities := map[string]graph.Entity{}
	relations := map[string]graph.Relation{}
	for i, c := range chunks {
		found, err := e.cfg.Extractor.Extract(ctx, c.Text)
		if err != nil {
			return fmt.Errorf("extract chunk %d: %w", i, err)
		}
		if err := e.storeFacts(ctx, chunkIDs[i], found, entities, relations); err != nil {
			return err
		}
		e.progress("%s: extracted chunk %d/%d: %d entities, %d relations", st.Name, i+1, len(chunks), len(found.Entities), len(found.Relations))
	}
	st.Entities, st.Relations = len(entities), len(relations)
	if err := e.embedGraph(ctx, sortedValues(entities), sortedValues(relations)); err != nil {
		return err
	}
	e.progress("%s: graph has %d entities and %d relations from this document", st.Name, len(entities), len(relations))
	return nil
}

// storeFacts merges what one chunk said into the graph, collecting the
// merged entities and relations.
func (e *Engine) storeFacts(ctx context.Context, chunkID string, found extract.Result, entities map[string]graph.Entity, relations map[string]graph.Relation) error {
	for _, x := range found.Entities {
		ent, err := e.cfg.Graph.UpsertEntity(ctx, x.Name, chunkID, graph.EntityFact{Type: x.Type, Description: x.Description})
		if err != nil {
			return err
		}
		entities[ent.ID] = ent
	}
	for _, x := range found.Relations {
		rel, err := e.cfg.Graph.UpsertRelation(ctx, x.Source, x.Target, chunkID,
			graph.RelationFact{Description: x.Description, Keywords: x.Keywords, Weight: x.Weight})
		if err != nil {
			return err
		}
		relations[rel.ID] = rel
	}
	return nil
}

// entityText and relationText are what gets embedded for graph elements.
func entityText(x graph.Entity) string { return x.Name + "\n" + x.Description }

func relationText(x graph.Relation) string {
	return strings.Join(x.Keywords, ", ") + "\n" + x.Source + "\n" + x.Target + "\n" + x.Description
}

// embedGraph (re)embeds entities and relations and stores their vectors.
func (e *Engine) embedGraph(ctx context.Context, ents []graph.Entity, rels []graph.Relation) error {
	if len(ents) > 0 {
		texts := make([]string, len(ents))
		for i, x := range ents {
			texts[i] = entityText(x)
		}
		vecs, err := e.cfg.Embedder.Embed(ctx, texts)
		if err != nil {
			return fmt.Errorf("embed entities: %w", err)
		}
		recs := make([]vector.Record, len(ents))
		for i, x := range ents {
			recs[i] = vector.Record{ID: x.ID, Ref: x.Name, Content: texts[i], Vector: vecs[i]}
		}
		if err := e.cfg.Vectors.Upsert(ctx, vector.Entities, recs); err != nil {
			return err
		}
	}
	if len(rels) > 0 {
		texts := make([]string, len(rels))
		for i, x := range rels {
			texts[i] = relationText(x)
		}
		vecs, err := e.cfg.Embedder.Embed(ctx, texts)
		if err != nil {
			return fmt.Errorf("embed relations: %w", err)
		}
		recs := make([]vector.Record, len(rels))
		for i, x := range rels {
			recs[i] = vector.Record{ID: x.ID, Ref: x.Source + " -- " + x.Target, Content: texts[i], Vector: vecs[i]}
		}
		if err := e.cfg.Vectors.Upsert(ctx, vector.Relations, recs); err != nil {
			return err
		}
	}
	return nil
}

// Delete removes a document: its text, chunks, chunk vectors, the graph
// facts its chunks contributed (entities and relations only it supported
// disappear, the others are re-described and re-embedded) and its status.
func (e *Engine) Delete(ctx context.Context, docID string) error {
	st, err := e.cfg.Status.Get(ctx, docID)
	if err != nil {
		return err
	}
	chunkIDs := st.ChunkIDs
	if len(chunkIDs) == 0 { // failed before the status recorded them
		if recs, err := e.cfg.KV.Get(ctx, kv.Docs, docID); err == nil && recs[docID] != "" {
			var d docRecord
			if json.Unmarshal([]byte(recs[docID]), &d) == nil {
				chunkIDs = d.ChunkIDs
			}
		}
	}
	if len(chunkIDs) > 0 {
		ch, err := e.cfg.Graph.RemoveSources(ctx, chunkIDs)
		if err != nil {
			return err
		}
		if err := e.cfg.Vectors.Delete(ctx, vector.Entities, ch.DeletedEntities); err != nil {
			return err
		}
		if err := e.cfg.Vectors.Delete(ctx, vector.Relations, ch.DeletedRelations); err != nil {
			return err
		}
		if err := e.embedGraph(ctx, ch.Entities, ch.Relations); err != nil {
			return err
		}
		if err := e.cfg.Vectors.Delete(ctx, vector.Chunks, chunkIDs); err != nil {
			return err
		}
		if err := e.cfg.KV.Delete(ctx, kv.Chunks, chunkIDs...); err != nil {
			return err
		}
	}
	if err := e.cfg.KV.Delete(ctx, kv.Docs, docID); err != nil {
		return err
	}
	return e.cfg.Status.Delete(ctx, docID)
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain structs are marshalled
	}
	return string(b)
}

// sortedValues returns the values of m ordered by key.
func sortedValues[T any](m map[string]T) []T {
	var out []T
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[k])
	}
	return out
}
