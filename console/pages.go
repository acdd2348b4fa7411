package console

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"strconv"
	"time"

	"k8s.io/klog/v2"
)

//go:embed assets/templates/*.html assets/static/*
var assets embed.FS

// staticFS is the stylesheet, served from the console's own origin (the CSP allows no other).
var staticFS = mustSub(assets, "assets/static")

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err) // a constant, embedded path
	}
	return sub
}

// pages are the HTML templates, one set per page (each defines "content" for the layout).
type pages struct {
	byName map[string]*template.Template
}

var funcs = template.FuncMap{
	"replicas": func(p *int32) string {
		if p == nil {
			return "—"
		}
		return strconv.Itoa(int(*p))
	},
	"num": func(v float64) string {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return "—"
		}
		return strconv.FormatFloat(v, 'f', 2, 64)
	},
	"pct":    func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) + "%" },
	"mul100": func(v float64) float64 { return 100 * v },
	"time": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
}

func newPages() (*pages, error) {
	p := &pages{byName: map[string]*template.Template{}}
	for _, name := range []string{"list", "detail", "cost", "error"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "assets/templates/layout.html", "assets/templates/"+name+".html")
		if err != nil {
			return nil, err
		}
		p.byName[name] = t
	}
	return p, nil
}

// pageData is what the layout receives.
type pageData struct {
	Title   string
	Refresh int
	Data    any
	Error   string
	Code    int
}

// render writes a page, or the error page with the error's status code.
func (s *Server) render(w http.ResponseWriter, page, title string, data any, err error) {
	pd := pageData{Title: title, Data: data, Refresh: int(s.opts.Refresh.Seconds())}
	code := http.StatusOK
	if err != nil {
		page, code = "error", statusOf(err)
		pd.Error, pd.Code, pd.Refresh = err.Error(), code, 0
	}
	var buf bytes.Buffer
	if err := s.pages.byName[page].Execute(&buf, pd); err != nil {
		klog.ErrorS(err, "console: rendering a page", "page", page)
		http.Error(w, "rendering the page failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// ReplicaChart draws the providers, the merge and the measured pods around now.
func (d *Detail) ReplicaChart() template.HTML {
	return RenderSVG(Chart{Title: "Replicas: providers, merged result and measured pods", Unit: "replicas",
		From: d.ReplicaFrom, To: d.ReplicaTo, Now: d.Now, Series: d.ReplicaSeries})
}

// TrafficChart draws the traffic metric's history, and its forecast when the result holds one.
func (d *Detail) TrafficChart() template.HTML {
	if d.Traffic == nil {
		return ""
	}
	title := "Traffic: " + d.Traffic.Metric + " over the last day"
	if d.Forecast != nil {
		title += ", and the forecast of " + d.Forecast.Metric
	}
	return RenderSVG(Chart{Title: title, From: d.Traffic.From, To: d.Traffic.To, Now: d.Now, Series: d.Traffic.Series})
}

// CostChart draws the measured pods against the replayed HPA and oracle.
func (c *CostData) CostChart() template.HTML {
	if c.Cost == nil || len(c.Series) == 0 {
		return ""
	}
	return RenderSVG(Chart{Title: "Pods: measured vs the native HPA replayed on the same demand", Unit: "pods",
		From: c.From, To: c.To, Series: c.Series})
}
