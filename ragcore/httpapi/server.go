// Package httpapi serves ragcore over HTTP.
//
// Each request's "Authorization: Bearer X" value is used, unparsed, as the
// datastore credential of the engine that serves it: the server keeps one
// engine per credential (LRU-bounded, closed on eviction). Behind tenantgate
// the credential is a tenant's token, so each caller reaches only its own
// tenant's data, while this package stays as tenant-unaware as the rest of
// ragcore. A request without the header uses the default credential the
// server was started with.
//
// Routes:
//
//	POST   /documents/text   {"name": "...", "text": "..."} -> ingest result
//	POST   /documents/files  multipart, one or more "file" parts -> ingest results
//	GET    /documents        document statuses
//	DELETE /documents/{id}   204, or 404 for an unknown document
//	POST   /query            {"query": "...", "mode": "hybrid"} -> result
//	GET    /healthz          200 "ok" (no datastore access)
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/tenantgate/tenantgate/ragcore"
)

// MaxUpload bounds a request body.
const MaxUpload = 32 << 20

// Server is the HTTP API.
type Server struct {
	engines           *pool[*ragcore.Engine]
	defaultCredential string
	log               *slog.Logger
}

// New returns a server that opens engines with open, keeping at most
// maxEngines; defaultCredential serves requests without a bearer token.
func New(open func(ctx context.Context, credential string) (*ragcore.Engine, error), maxEngines int, defaultCredential string, log *slog.Logger) *Server {
	if maxEngines <= 0 {
		maxEngines = 1
	}
	if log == nil {
		log = slog.Default()
	}
	return &Server{engines: newPool(maxEngines, open), defaultCredential: defaultCredential, log: log}
}

// Close closes every engine.
func (s *Server) Close() { s.engines.closeAll() }

// Handler returns the routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.Handle("POST /documents/text", s.withEngine(s.postText))
	mux.Handle("POST /documents/files", s.withEngine(s.postFiles))
	mux.Handle("GET /documents", s.withEngine(s.listDocuments))
	mux.Handle("DELETE /documents/{id}", s.withEngine(s.deleteDocument))
	mux.Handle("POST /query", s.withEngine(s.query))
	return mux
}

type engineHandler func(w http.ResponseWriter, r *http.Request, e *ragcore.Engine)

// credential returns the request's bearer value, or the default.
func (s *Server) credential(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return s.defaultCredential, true
	}
	scheme, value, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(value) == "" {
		return "", false
	}
	return strings.TrimSpace(value), true
}

func (s *Server) withEngine(h engineHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cred, ok := s.credential(r)
		if !ok {
			writeError(w, http.StatusUnauthorized, errors.New("the Authorization header must be \"Bearer <credential>\""))
			return
		}
		e, release, err := s.engines.get(r.Context(), cred)
		if err != nil {
			s.log.Warn("ragcore: open engine", "err", err)
			writeError(w, http.StatusServiceUnavailable, fmt.Errorf("datastores unavailable for this credential: %w", err))
			return
		}
		defer release()
		r.Body = http.MaxBytesReader(w, r.Body, MaxUpload)
		h(w, r, e)
	})
}

func (s *Server) postText(w http.ResponseWriter, r *http.Request, e *ragcore.Engine) {
	var req struct {
		Name string `json:"name"`
		Text string `json:"text"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("body: %w", err))
		return
	}
	if req.Name == "" {
		req.Name = "text"
	}
	res, err := e.Ingest(r.Context(), req.Name, req.Text)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) postFiles(w http.ResponseWriter, r *http.Request, e *ragcore.Engine) {
	if err := r.ParseMultipartForm(MaxUpload); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("multipart body: %w", err))
		return
	}
	files := r.MultipartForm.File["file"]
	if len(files) == 0 {
		writeError(w, http.StatusBadRequest, errors.New("no \"file\" parts"))
		return
	}
	texts := make([]string, len(files))
	for i, fh := range files {
		f, err := fh.Open()
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		text, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		texts[i] = string(text)
		if err := e.Queue(r.Context(), fh.Filename, texts[i]); err != nil {
			writeError(w, http.StatusUnprocessableEntity, err)
			return
		}
	}
	results := []ragcore.IngestResult{}
	for i, fh := range files {
		res, err := e.Ingest(r.Context(), fh.Filename, texts[i])
		if err != nil {
			writeError(w, http.StatusUnprocessableEntity, fmt.Errorf("%s: %w", fh.Filename, err))
			return
		}
		results = append(results, res)
	}
	writeJSON(w, http.StatusOK, results)
}

func (s *Server) listDocuments(w http.ResponseWriter, r *http.Request, e *ragcore.Engine) {
	docs, err := e.Documents(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, docs)
}

func (s *Server) deleteDocument(w http.ResponseWriter, r *http.Request, e *ragcore.Engine) {
	err := e.Delete(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, ragcore.ErrNotFound):
		writeError(w, http.StatusNotFound, err)
	case err != nil:
		writeError(w, http.StatusInternalServerError, err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *Server) query(w http.ResponseWriter, r *http.Request, e *ragcore.Engine) {
	var req struct {
		Query string `json:"query"`
		Mode  string `json:"mode"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("body: %w", err))
		return
	}
	mode, err := ragcore.ParseMode(req.Mode)
	if err == nil && strings.TrimSpace(req.Query) == "" {
		err = errors.New("query must not be empty")
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	res, err := e.Query(r.Context(), req.Query, mode)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}
