// Command referrers-registry is a tiny in-memory OCI registry with the OCI 1.1 referrers API
// (GET /v2/<name>/referrers/<digest>), for trustgate's tests: go-containerregistry's
// pkg/registry with WithReferrersSupport(true). Debian's docker-registry (distribution 2.8)
// has no referrers API, so clients fall back to the referrers tag schema there; this one lets
// the tests exercise the API itself.
//
//	referrers-registry -addr 127.0.0.1:5000 [-header 'X-Trustgate-Registry: TOKEN']
//	                   [-referrers-page-size N] [-raw-referrers] [-quiet]
//
// pkg/registry's referrers answer reports each referrer's config.mediaType as its
// artifactType, although the OCI distribution spec says the manifest's own artifactType comes
// first (cosign's bundles have artifactType application/vnd.dev.sigstore.bundle.v0.3+json and
// an empty config, application/vnd.oci.empty.v1+json). Unless -raw-referrers is given, this
// program rewrites the answer to follow the spec, sorts it in the order the referrers were
// pushed (so a test controls which page each lands on), and, with
// -referrers-page-size N, splits it into pages of N descriptors chained by
// `Link: <...>; rel="next"` headers, so that clients' pagination can be tested (neither
// pkg/registry nor distribution paginates referrers).
//
// It logs to stderr and exits on SIGTERM or SIGINT. Storage is in memory and lost on exit.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:5000", "address to listen on (host:port)")
	header := flag.String("header", "", "extra response header 'Name: value' on every answer (lets a test harness recognise this instance)")
	quiet := flag.Bool("quiet", false, "do not log each request")
	pageSize := flag.Int("referrers-page-size", 0, "split referrers answers into pages of this many descriptors (0: one page)")
	raw := flag.Bool("raw-referrers", false, "serve pkg/registry's referrers answers unchanged (artifactType from config.mediaType, no paging)")
	flag.Parse()

	logger := log.New(os.Stderr, "referrers-registry: ", log.LstdFlags|log.Lmicroseconds)
	opts := []registry.Option{registry.WithReferrersSupport(true)}
	if *quiet {
		opts = append(opts, registry.Logger(log.New(discard{}, "", 0)))
	} else {
		opts = append(opts, registry.Logger(logger))
	}
	var handler http.Handler = registry.New(opts...)
	if !*raw {
		handler = referrers(handler, *pageSize)
	}
	if *header != "" {
		name, value, ok := strings.Cut(*header, ":")
		if !ok || strings.TrimSpace(name) == "" {
			logger.Fatalf("-header %q: want 'Name: value'", *header)
		}
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		inner := handler
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(name, value)
			inner.ServeHTTP(w, r)
		})
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		logger.Fatalf("listen: %v", err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	logger.Printf("listening on %s", ln.Addr())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Fatalf("serve: %v", err)
	}
	fmt.Fprintln(os.Stderr, "referrers-registry: stopped")
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// pushOrder remembers when each manifest digest was first pushed.
type pushOrder struct {
	mu   sync.Mutex
	seq  map[string]int
	next int
}

func (p *pushOrder) record(digest string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, seen := p.seq[digest]; !seen {
		p.seq[digest] = p.next
		p.next++
	}
}

// less orders two digests by push, unknown ones last and by digest among themselves.
func (p *pushOrder) less(a, b string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	sa, okA := p.seq[a]
	sb, okB := p.seq[b]
	switch {
	case okA && okB:
		return sa < sb
	case okA != okB:
		return okA
	default:
		return a < b
	}
}

// referrers wraps a registry handler: GET /v2/<name>/referrers/<digest> answers are rewritten
// with each descriptor's artifactType taken from its manifest (falling back to
// config.mediaType), sorted in push order (the order the manifests' PUTs arrived; a test
// pushing bundles one after another knows where each lands), and paged when pageSize > 0
// (`?page=K`, with a `Link: </v2/<name>/referrers/<digest>?page=K+1>; rel="next"` header
// while more remain).
func referrers(inner http.Handler, pageSize int) http.Handler {
	order := &pushOrder{seq: map[string]int{}}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
		if r.Method == http.MethodPut && len(parts) >= 4 && parts[0] == "v2" && parts[len(parts)-2] == "manifests" {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			sum := sha256.Sum256(body)
			order.record("sha256:" + hex.EncodeToString(sum[:]))
			r.Body = io.NopCloser(bytes.NewReader(body))
			inner.ServeHTTP(w, r)
			return
		}
		if r.Method != http.MethodGet || len(parts) < 4 || parts[0] != "v2" || parts[len(parts)-2] != "referrers" {
			inner.ServeHTTP(w, r)
			return
		}
		name := strings.Join(parts[1:len(parts)-2], "/")
		rec := httptest.NewRecorder()
		inner.ServeHTTP(rec, r.Clone(r.Context()))
		var index v1.IndexManifest
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &index) != nil {
			copyResponse(w, rec)
			return
		}
		for i, d := range index.Manifests {
			get := httptest.NewRequest(http.MethodGet, "/v2/"+name+"/manifests/"+d.Digest.String(), nil)
			get.Header.Set("Accept", string(d.MediaType))
			m := httptest.NewRecorder()
			inner.ServeHTTP(m, get)
			var manifest struct {
				ArtifactType string `json:"artifactType"`
				Config       struct {
					MediaType string `json:"mediaType"`
				} `json:"config"`
			}
			if m.Code == http.StatusOK && json.Unmarshal(m.Body.Bytes(), &manifest) == nil && manifest.ArtifactType != "" {
				index.Manifests[i].ArtifactType = manifest.ArtifactType
			}
		}
		sort.SliceStable(index.Manifests, func(i, j int) bool {
			return order.less(index.Manifests[i].Digest.String(), index.Manifests[j].Digest.String())
		})
		if pageSize > 0 {
			page, _ := strconv.Atoi(r.URL.Query().Get("page"))
			page = max(page, 0)
			start := min(page*pageSize, len(index.Manifests))
			end := min(start+pageSize, len(index.Manifests))
			if end < len(index.Manifests) {
				w.Header().Set("Link", fmt.Sprintf("<%s?page=%d>; rel=\"next\"", r.URL.Path, page+1))
			}
			index.Manifests = index.Manifests[start:end]
		}
		body, _ := json.Marshal(&index)
		w.Header().Set("Content-Type", "application/vnd.oci.image.index.v1+json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	})
}

func copyResponse(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}
