package status

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tenantgate/tenantgate/internal/testutil"
)

func newMongoStore(t *testing.T) *Mongo {
	t.Helper()
	ctx := context.Background()
	client, err := mongo.Connect(options.Client().ApplyURI(testutil.MongoURL(t)))
	if err != nil {
		t.Fatal(err)
	}
	db := testutil.UniqueName("ragcore_test_")
	t.Cleanup(func() {
		client.Database(db).Drop(ctx)
		client.Disconnect(ctx)
	})
	return NewMongo(client, db)
}

func TestMongoStore(t *testing.T) {
	ctx := context.Background()
	s := newMongoStore(t)
	if _, err := s.Get(ctx, "doc-missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(missing) = %v, want ErrNotFound", err)
	}
	if err := s.Put(ctx, Doc{ID: "doc-b", Name: "b.md", State: Processing, Length: 10}); err != nil {
		t.Fatal(err)
	}
	first, err := s.Get(ctx, "doc-b")
	if err != nil {
		t.Fatal(err)
	}
	if first.State != Processing || first.CreatedAt.IsZero() || time.Since(first.CreatedAt) > time.Minute {
		t.Fatalf("first status %+v", first)
	}
	time.Sleep(5 * time.Millisecond)
	steps := []Doc{
		{ID: "doc-b", Name: "b.md", State: Processed, Length: 10, ChunkIDs: []string{"c1", "c2"}, Chunks: 2, Entities: 3, Relations: 1},
		{ID: "doc-a", Name: "a.md", State: Failed, Error: "boom"},
	}
	for _, d := range steps {
		if err := s.Put(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Get(ctx, "doc-b")
	if err != nil {
		t.Fatal(err)
	}
	if !got.CreatedAt.Equal(first.CreatedAt) || !got.UpdatedAt.After(first.UpdatedAt) {
		t.Fatalf("timestamps: created %v -> %v, updated %v -> %v", first.CreatedAt, got.CreatedAt, first.UpdatedAt, got.UpdatedAt)
	}
	got.CreatedAt, got.UpdatedAt = time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, steps[0]) {
		t.Fatalf("Get = %+v\nwant %+v", got, steps[0])
	}
	list, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != "doc-a" || list[0].Error != "boom" || list[1].ID != "doc-b" {
		t.Fatalf("List = %+v", list)
	}
	for _, id := range []string{"doc-a", "doc-missing"} {
		if err := s.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if list, _ = s.List(ctx); len(list) != 1 || list[0].ID != "doc-b" {
		t.Fatalf("after delete List = %+v", list)
	}
}
