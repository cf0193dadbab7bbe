package ragcore

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/tenantgate/tenantgate/ragcore/ids"
	"github.com/tenantgate/tenantgate/ragcore/store/kv"
	"github.com/tenantgate/tenantgate/ragcore/store/status"
	"github.com/tenantgate/tenantgate/ragcore/store/vector"
)

func sourceNames(r Result) []string {
	var out []string
	for _, s := range r.Sources {
		out = append(out, s.Name)
	}
	return out
}

func entityNames(r Result) []string {
	var out []string
	for _, x := range r.Entities {
		out = append(out, x.Name)
	}
	return out
}

func TestPipelineIngestQueryDelete(t *testing.T) {
	ctx := context.Background()
	var progress []string
	s := testSettings(t)
	s.Progress = func(m string) { progress = append(progress, m) }
	e := openTest(t, s)

	docs := corpus(t, "acme")
	byName := map[string]IngestResult{}
	for _, name := range []string{"company.md", "customers.md", "industry-report.md"} {
		res, err := e.Ingest(ctx, name, docs[name])
		if err != nil {
			t.Fatalf("ingest %s: %v", name, err)
		}
		if res.Unchanged || res.Chunks == 0 || res.Entities == 0 || res.Relations == 0 || res.DocID != ids.Doc(docs[name]) {
			t.Fatalf("ingest %s: %+v", name, res)
		}
		byName[name] = res
	}
	if len(progress) == 0 {
		t.Error("no progress lines")
	}

	t.Run("reingest is a no-op", func(t *testing.T) {
		res, err := e.Ingest(ctx, "renamed.md", docs["company.md"])
		if err != nil || !res.Unchanged || res.Name != "company.md" || res.Chunks != byName["company.md"].Chunks {
			t.Fatalf("re-ingest: %+v, %v", res, err)
		}
	})

	t.Run("status", func(t *testing.T) {
		list, err := e.Documents(ctx)
		if err != nil || len(list) != 3 {
			t.Fatalf("Documents = %+v, %v", list, err)
		}
		for _, d := range list {
			if d.State != status.Processed || d.Chunks == 0 || len(d.ChunkIDs) != d.Chunks || d.CreatedAt.IsZero() {
				t.Errorf("status %+v", d)
			}
		}
	})

	queries := []struct {
		mode       Mode
		q          string
		wantSource string
		wantEntity string
	}{
		{Naive, "When is the Project Falcon launch date?", "company.md", ""},
		{Local, "Who is Maria Lopez?", "company.md", "Maria Lopez"},
		{Global, "Which customer signed a contract with Acme Robotics?", "customers.md", "Nordfrost Logistics"},
		{Hybrid, "What does Nordfrost Logistics use?", "customers.md", "Nordfrost Logistics"},
	}
	for _, q := range queries {
		t.Run("query "+string(q.mode), func(t *testing.T) {
			res, err := e.Query(ctx, q.q, q.mode)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(sourceNames(res), q.wantSource) {
				t.Errorf("sources %v, want %s among them", sourceNames(res), q.wantSource)
			}
			if q.wantEntity != "" && !slices.Contains(entityNames(res), q.wantEntity) {
				t.Errorf("entities %v, want %s among them", entityNames(res), q.wantEntity)
			}
			if len(res.Chunks) == 0 || res.Answer != "" || !strings.Contains(res.Context, "-----Sources-----") {
				t.Errorf("result %+v", res)
			}
			for _, c := range res.Chunks {
				if c.DocID != byName[c.DocName].DocID {
					t.Errorf("chunk %s cites %s as %s", c.ID, c.DocID, c.DocName)
				}
			}
		})
	}

	if _, err := e.Query(ctx, "anything", Mode("mix")); err == nil {
		t.Error("unknown mode accepted")
	}

	t.Run("delete removes only what the document alone supported", func(t *testing.T) {
		cust := byName["customers.md"]
		st, err := e.cfg.Status.Get(ctx, cust.DocID)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Delete(ctx, cust.DocID); err != nil {
			t.Fatal(err)
		}
		if err := e.Delete(ctx, cust.DocID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
		if got, _ := e.cfg.KV.Get(ctx, kv.Chunks, st.ChunkIDs...); len(got) != 0 {
			t.Errorf("chunk texts left: %d", len(got))
		}
		if got, _ := e.cfg.KV.Get(ctx, kv.Docs, cust.DocID); len(got) != 0 {
			t.Error("doc text left")
		}
		ents, err := e.cfg.Graph.Entities(ctx, []string{"Nordfrost Logistics", "Maria Lopez", "Orion Platform"})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, x := range ents {
			names = append(names, x.Name)
			for _, src := range x.SourceIDs {
				if slices.Contains(st.ChunkIDs, src) {
					t.Errorf("%s still cites deleted chunk %s", x.Name, src)
				}
			}
		}
		if !slices.Equal(names, []string{"Maria Lopez", "Orion Platform"}) {
			t.Errorf("entities after delete %v, want Maria Lopez and Orion Platform only", names)
		}
		res, err := e.Query(ctx, "Nordfrost Logistics cold-storage warehouses in Hamburg", Hybrid)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(sourceNames(res), "customers.md") || slices.Contains(entityNames(res), "Nordfrost Logistics") {
			t.Errorf("deleted document still retrieved: %v %v", sourceNames(res), entityNames(res))
		}
		for _, ns := range vector.Namespaces {
			hits, err := e.cfg.Vectors.Query(ctx, ns, make([]float32, 256), 1000)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range hits {
				if h.ID == ids.Entity("Nordfrost Logistics") || slices.Contains(st.ChunkIDs, h.ID) {
					t.Errorf("vector %s left in %s", h.ID, ns)
				}
			}
		}
	})

	t.Run("deleting everything empties every store", func(t *testing.T) {
		for _, name := range []string{"company.md", "industry-report.md"} {
			if err := e.Delete(ctx, byName[name].DocID); err != nil {
				t.Fatal(err)
			}
		}
		for _, ns := range vector.Namespaces {
			if hits, _ := e.cfg.Vectors.Query(ctx, ns, make([]float32, 256), 10); len(hits) != 0 {
				t.Errorf("%d %s vectors left", len(hits), ns)
			}
		}
		for _, ns := range []string{kv.Docs, kv.Chunks} {
			if left, _ := e.cfg.KV.IDs(ctx, ns); len(left) != 0 {
				t.Errorf("%d %s keys left", len(left), ns)
			}
		}
		if list, _ := e.Documents(ctx); len(list) != 0 {
			t.Errorf("statuses left: %+v", list)
		}
		res, err := e.Query(ctx, "Maria Lopez", Hybrid)
		if err != nil || len(res.Chunks)+len(res.Entities)+len(res.Sources) != 0 {
			t.Errorf("empty store query: %+v, %v", res, err)
		}
	})
}

func TestQueueAndEmptyDocuments(t *testing.T) {
	ctx := context.Background()
	e := openTest(t, testSettings(t))
	if _, err := e.Ingest(ctx, "blank.md", " \n "); err == nil {
		t.Fatal("empty document accepted")
	}
	if err := e.Queue(ctx, "blank.md", ""); err == nil {
		t.Fatal("empty document queued")
	}
	text := "Acme Robotics hired Maria Lopez."
	if err := e.Queue(ctx, "a.md", text); err != nil {
		t.Fatal(err)
	}
	if list, _ := e.Documents(ctx); len(list) != 1 || list[0].State != status.Pending {
		t.Fatalf("after Queue: %+v", list)
	}
	if _, err := e.Ingest(ctx, "a.md", text); err != nil {
		t.Fatal(err)
	}
	if err := e.Queue(ctx, "a.md", text); err != nil {
		t.Fatal(err)
	}
	if list, _ := e.Documents(ctx); len(list) != 1 || list[0].State != status.Processed {
		t.Fatalf("Queue of a processed document changed it: %+v", list)
	}
}

func TestParseMode(t *testing.T) {
	tests := []struct {
		in   string
		want Mode
		ok   bool
	}{
		{"", Hybrid, true}, {"naive", Naive, true}, {"LOCAL", Local, true}, {"global", Global, true}, {"mix", "", false},
	}
	for _, tt := range tests {
		got, err := ParseMode(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("ParseMode(%q) = %q, %v", tt.in, got, err)
		}
	}
}
