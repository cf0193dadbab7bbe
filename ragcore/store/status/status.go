// Package status is ragcore's document-status storage role: for every
// document, where it is in the pipeline (pending, processing, processed,
// failed with the error), its chunk ids and counts, and timestamps.
//
// Mongo is the implementation, one document per ragcore document in the
// doc_status collection, keyed by the document id. It uses only basic CRUD
// (updateOne with upsert, find, findOne, deleteOne): no transactions, change
// streams, aggregation or server-side JavaScript, so it works on FerretDB
// and behind a proxy that scopes collections per tenant.
package status

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// State is a document's pipeline state.
type State string

// Pipeline states.
const (
	Pending    State = "pending"
	Processing State = "processing"
	Processed  State = "processed"
	Failed     State = "failed"
)

// Doc is the status of one document.
type Doc struct {
	ID        string    `bson:"_id" json:"id"`
	Name      string    `bson:"name" json:"name"`
	State     State     `bson:"status" json:"status"`
	Error     string    `bson:"error,omitempty" json:"error,omitempty"`
	Length    int       `bson:"content_length" json:"content_length"`
	ChunkIDs  []string  `bson:"chunk_ids" json:"chunk_ids,omitempty"`
	Chunks    int       `bson:"chunks_count" json:"chunks_count"`
	Entities  int       `bson:"entities_count" json:"entities_count"`
	Relations int       `bson:"relations_count" json:"relations_count"`
	CreatedAt time.Time `bson:"created_at" json:"created_at"`
	UpdatedAt time.Time `bson:"updated_at" json:"updated_at"`
}

// ErrNotFound is returned by Get for an unknown document.
var ErrNotFound = errors.New("status: document not found")

// Store keeps document statuses.
type Store interface {
	// Put creates or replaces d's status; CreatedAt is kept from the first
	// Put and UpdatedAt set to now.
	Put(ctx context.Context, d Doc) error
	Get(ctx context.Context, id string) (Doc, error)
	List(ctx context.Context) ([]Doc, error) // by name, then id
	Delete(ctx context.Context, id string) error
	Close(ctx context.Context) error
}

// Collection is the MongoDB collection of statuses.
const Collection = "doc_status"

// Mongo is the Store on a MongoDB-wire server.
type Mongo struct {
	client *mongo.Client
	coll   *mongo.Collection
}

// NewMongo uses the doc_status collection of database db.
func NewMongo(client *mongo.Client, db string) *Mongo {
	return &Mongo{client: client, coll: client.Database(db).Collection(Collection)}
}

// Put implements Store with one updateOne upsert.
func (m *Mongo) Put(ctx context.Context, d Doc) error {
	now := time.Now().UTC().Truncate(time.Millisecond)
	if d.ChunkIDs == nil {
		d.ChunkIDs = []string{}
	}
	set := bson.D{
		{Key: "name", Value: d.Name}, {Key: "status", Value: d.State}, {Key: "error", Value: d.Error},
		{Key: "content_length", Value: d.Length}, {Key: "chunk_ids", Value: d.ChunkIDs},
		{Key: "chunks_count", Value: d.Chunks}, {Key: "entities_count", Value: d.Entities},
		{Key: "relations_count", Value: d.Relations}, {Key: "updated_at", Value: now},
	}
	_, err := m.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: d.ID}},
		bson.D{{Key: "$set", Value: set}, {Key: "$setOnInsert", Value: bson.D{{Key: "created_at", Value: now}}}},
		options.UpdateOne().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("status: put %s: %w", d.ID, err)
	}
	return nil
}

// Get implements Store.
func (m *Mongo) Get(ctx context.Context, id string) (Doc, error) {
	var d Doc
	err := m.coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return Doc{}, ErrNotFound
	}
	if err != nil {
		return Doc{}, fmt.Errorf("status: get %s: %w", id, err)
	}
	return d, nil
}

// List implements Store.
func (m *Mongo) List(ctx context.Context) ([]Doc, error) {
	cur, err := m.coll.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "name", Value: 1}, {Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("status: list: %w", err)
	}
	docs := []Doc{}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("status: list: %w", err)
	}
	return docs, nil
}

// Delete implements Store; deleting an unknown id is not an error.
func (m *Mongo) Delete(ctx context.Context, id string) error {
	if _, err := m.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
		return fmt.Errorf("status: delete %s: %w", id, err)
	}
	return nil
}

// Close disconnects the client.
func (m *Mongo) Close(ctx context.Context) error { return m.client.Disconnect(ctx) }
