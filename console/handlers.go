package console

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
)

// Bounds of the per-user state of forwarded-token mode.
const (
	maxTokenBytes   = 8 << 10
	maxUserClusters = 64
	maxCostEntries  = 256
	costTTL         = time.Minute
	trafficSpan     = 24 * time.Hour
	trafficStep     = 5 * time.Minute
	// historyEndRounding is how history ranges end: at now, to the 10 seconds.
	historyEndRounding = 10 * time.Second
)

// userClusters gives each request a Cluster acting with its user's credentials.
type userClusters struct {
	opts  Options
	local *Cluster // the kubeconfig's user, when no token is forwarded

	mu     sync.Mutex
	byUser map[string]*Cluster
}

func newUserClusters(opts Options) (*userClusters, error) {
	u := &userClusters{opts: opts, byUser: map[string]*Cluster{}}
	if opts.ForwardedTokenHeader == "" {
		c, err := NewCluster(opts.Config, opts.Namespaces, !opts.NoHistory)
		if err != nil {
			return nil, err
		}
		u.local = c
	}
	return u, nil
}

// forRequest returns the Cluster of the request's user and a key naming that user (a hash of the
// forwarded token), for caches.
func (u *userClusters) forRequest(r *http.Request) (*Cluster, string, error) {
	if u.local != nil {
		return u.local, "", nil
	}
	token := strings.TrimSpace(r.Header.Get(u.opts.ForwardedTokenHeader))
	token = strings.TrimSpace(strings.TrimPrefix(token, "Bearer "))
	switch {
	case token == "":
		return nil, "", fmt.Errorf("no %s header: the console acts only with the user's own token, which the authenticating proxy forwards", u.opts.ForwardedTokenHeader)
	case len(token) > maxTokenBytes:
		return nil, "", fmt.Errorf("%s header of %d bytes: the limit is %d", u.opts.ForwardedTokenHeader, len(token), maxTokenBytes)
	}
	sum := sha256.Sum256([]byte(token))
	key := hex.EncodeToString(sum[:])
	u.mu.Lock()
	defer u.mu.Unlock()
	if c, ok := u.byUser[key]; ok {
		return c, key, nil
	}
	cfg := rest.AnonymousClientConfig(u.opts.Config)
	cfg.BearerToken = token
	c, err := NewCluster(cfg, u.opts.Namespaces, !u.opts.NoHistory)
	if err != nil {
		return nil, "", err
	}
	if len(u.byUser) >= maxUserClusters {
		clear(u.byUser)
	}
	u.byUser[key] = c
	return c, key, nil
}

// costCache keeps cost pages for a minute: a replay over a week of history is the console's most
// expensive answer, and reloading the page must not repeat it.
type costCache struct {
	mu      sync.Mutex
	entries map[string]costEntry
}

type costEntry struct {
	cost *Cost
	at   time.Time
}

func newCostCache() *costCache { return &costCache{entries: map[string]costEntry{}} }

func (c *costCache) get(key string, now time.Time) *Cost {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || now.Sub(e.at) > costTTL {
		return nil
	}
	return e.cost
}

func (c *costCache) put(key string, cost *Cost, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= maxCostEntries {
		clear(c.entries)
	}
	c.entries[key] = costEntry{cost, now}
}

// requestError is an answer with a status code and a message for the user.
type requestError struct {
	code int
	msg  string
}

func (e *requestError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &requestError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

// objectKey reads and checks the namespace and name path parameters.
func objectKey(r *http.Request) (types.NamespacedName, error) {
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return types.NamespacedName{}, badRequest("namespace %q: %s", truncate(ns, 80), strings.Join(errs, "; "))
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return types.NamespacedName{}, badRequest("name %q: %s", truncate(name, 80), strings.Join(errs, "; "))
	}
	return types.NamespacedName{Namespace: ns, Name: name}, nil
}

// windowParam reads the cost window: 1h, 1d (default) or 7d.
func windowParam(r *http.Request) (string, error) {
	w := r.URL.Query().Get("window")
	if w == "" {
		return "1d", nil
	}
	if _, ok := CostWindows[w]; !ok {
		return "", badRequest("window %q: choose 1h, 1d or 7d", truncate(w, 20))
	}
	return w, nil
}

// ListData is the list page.
type ListData struct {
	Items     []Summary `json:"items"`
	Scope     string    `json:"scope"`
	Hidden    int       `json:"hiddenNamespaces"`
	Truncated bool      `json:"truncated"`
}

func (s *Server) list(ctx context.Context, r *http.Request) (*ListData, error) {
	c, _, err := s.users.forRequest(r)
	if err != nil {
		return nil, &requestError{http.StatusUnauthorized, err.Error()}
	}
	v, err := c.ListIHPAs(ctx)
	if err != nil {
		return nil, err
	}
	out := &ListData{Scope: v.Scope, Hidden: v.Hidden, Truncated: v.Truncated, Items: []Summary{}}
	for i := range v.Items {
		out.Items = append(out.Items, Summarize(&v.Items[i]))
	}
	return out, nil
}

func (s *Server) detail(ctx context.Context, r *http.Request) (*Detail, error) {
	key, err := objectKey(r)
	if err != nil {
		return nil, err
	}
	c, _, err := s.users.forRequest(r)
	if err != nil {
		return nil, &requestError{http.StatusUnauthorized, err.Error()}
	}
	o, err := c.GetObjects(ctx, key)
	if err != nil {
		return nil, err
	}
	now := s.opts.Now()
	var actual *Series
	if o.Workload != nil && c.History != nil {
		// Ending now (not on the last whole step): a workload younger than a step still shows.
		to := now.Truncate(historyEndRounding)
		h, err := c.podHistory(ctx, key.Namespace, o.Workload.Selector, to.Add(-timelinePast), to, timelineStep)
		if err != nil {
			o.Errors[PartHistory] = err.Error()
		} else {
			s := h.series("actual pods (measured)", "actual")
			actual = &s
		}
	}
	d := BuildDetail(o, now, actual)
	for i := range o.IHPA.Spec.PortraitProviders {
		p := &o.IHPA.Spec.PortraitProviders[i]
		if p.Dynamic == nil || p.Dynamic.PortraitType != v1alpha1.PredictivePortraitType {
			continue
		}
		hp := portraitOf(o.IHPA, p, o.Portraits)
		if hp == nil {
			continue
		}
		to := now.Truncate(historyEndRounding)
		from := to.Add(-trafficSpan)
		tr, err := c.traffic(ctx, hp, from, to, trafficStep)
		if err != nil {
			d.Errors[PartTraffic] = err.Error()
		}
		f, note, err := c.forecast(ctx, hp, now)
		if err != nil {
			d.Errors[PartForecast] = err.Error()
		}
		if note != "" {
			d.ForecastNotice = note
		}
		d.Forecast = f
		d.Traffic = withForecast(tr, f, from, to)
		break
	}
	return &d, nil
}

// CostData is the cost page.
type CostData struct {
	Summary
	*Cost
	Error string `json:"error,omitempty"`
}

func (s *Server) cost(ctx context.Context, r *http.Request) (*CostData, error) {
	key, err := objectKey(r)
	if err != nil {
		return nil, err
	}
	window, err := windowParam(r)
	if err != nil {
		return nil, err
	}
	c, user, err := s.users.forRequest(r)
	if err != nil {
		return nil, &requestError{http.StatusUnauthorized, err.Error()}
	}
	// Read the IHPA first, always: a cached cost must not outlive the user's right to see it.
	o, err := c.GetObjects(ctx, key)
	if err != nil {
		return nil, err
	}
	now := s.opts.Now()
	out := &CostData{Summary: Summarize(o.IHPA)}
	cacheKey := user + "|" + key.String() + "|" + window
	if cached := s.costs.get(cacheKey, now); cached != nil {
		out.Cost = cached
		return out, nil
	}
	cost, err := c.ComputeCost(ctx, o, window, now)
	if err != nil {
		// The page still shows, saying why there is no figure.
		out.Error = err.Error()
		out.Cost = &Cost{Window: window}
		return out, nil
	}
	s.costs.put(cacheKey, cost, now)
	out.Cost = cost
	return out, nil
}

func statusOf(err error) int {
	var re *requestError
	switch {
	case errors.As(err, &re):
		return re.code
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	default:
		return http.StatusBadGateway
	}
}

func writeJSON(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	code := http.StatusOK
	if err != nil {
		code, v = statusOf(err), map[string]string{"error": err.Error()}
	}
	b, merr := json.Marshal(v)
	if merr != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"encoding the answer failed"}`)
		klog.ErrorS(merr, "console: encoding an answer")
	}
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

func (s *Server) listAPI(w http.ResponseWriter, r *http.Request) {
	d, err := s.list(r.Context(), r)
	writeJSON(w, d, err)
}

func (s *Server) detailAPI(w http.ResponseWriter, r *http.Request) {
	d, err := s.detail(r.Context(), r)
	writeJSON(w, d, err)
}

func (s *Server) costAPI(w http.ResponseWriter, r *http.Request) {
	d, err := s.cost(r.Context(), r)
	writeJSON(w, d, err)
}

func (s *Server) listPage(w http.ResponseWriter, r *http.Request) {
	d, err := s.list(r.Context(), r)
	s.render(w, "list", "Autoscalers", d, err)
}

func (s *Server) detailPage(w http.ResponseWriter, r *http.Request) {
	d, err := s.detail(r.Context(), r)
	title := r.PathValue("namespace") + "/" + r.PathValue("name")
	s.render(w, "detail", title, d, err)
}

func (s *Server) costPage(w http.ResponseWriter, r *http.Request) {
	d, err := s.cost(r.Context(), r)
	title := "Cost of " + r.PathValue("namespace") + "/" + r.PathValue("name")
	s.render(w, "cost", title, d, err)
}
