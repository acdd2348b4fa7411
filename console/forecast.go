package console

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/config/portraitresult"
)

// PartForecast is the traffic forecast's part of a detail page (a key of Detail.Errors).
const PartForecast = "forecast"

// trafficFuture caps how far right of "now" the traffic chart reaches for the forecast.
const trafficFuture = 24 * time.Hour

// Forecast is the traffic forecast of a predictive portrait's last job run, as its result
// ConfigMap holds it (trafficBand): the forecast's upper quantile and, from jobs that write it, its
// median, for the traffic metric the console charts (spec.metrics[2]).
type Forecast struct {
	ConfigMap string  `json:"configMap"`
	Metric    string  `json:"metric"`
	Quantile  float64 `json:"quantile"`
	Upper     []Point `json:"upper"`
	// Median is empty when the job that wrote the result stores no median.
	Median []Point `json:"median,omitempty"`
	// ExpireTime is when the result stops holding (zero: never); Expired tells it has.
	ExpireTime time.Time `json:"expireTime,omitzero"`
	Expired    bool      `json:"expired"`
}

// forecast reads the traffic forecast of hp's last run from its result ConfigMap, with the user's
// rights. Without one to draw it returns nil and a note saying why; an unreadable one is an error.
func (c *Cluster) forecast(ctx context.Context, hp *v1alpha1.HorizontalPortrait, now time.Time) (*Forecast, string, error) {
	name := portraitresult.ConfigMapName(hp.Name)
	if len(hp.Spec.Metrics) < 3 {
		return nil, "", fmt.Errorf("HorizontalPortrait %s has %d metrics; the traffic metric is the third (spec.metrics[2])", hp.Name, len(hp.Spec.Metrics))
	}
	metric := hp.Spec.Metrics[2].Name
	cm := &corev1.ConfigMap{}
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: hp.Namespace, Name: name}, cm); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, "The algorithm job has written no result yet (ConfigMap " + name + "): there is no forecast to draw.", nil
		}
		return nil, "", fmt.Errorf("reading the forecast in ConfigMap %s: %w", name, err)
	}
	f := &Forecast{ConfigMap: name, Metric: metric}
	expire, err := portraitresult.DecodeExpireTime(cm.Data)
	if err != nil {
		return nil, "", fmt.Errorf("ConfigMap %s: %w", name, err)
	}
	f.ExpireTime, f.Expired = expire, !expire.IsZero() && !now.Before(expire)
	band, err := portraitresult.DecodeBand(cm.Data)
	if errors.Is(err, portraitresult.ErrNoBand) {
		return nil, "The result ConfigMap " + name + " holds replicas only (no " + portraitresult.KeyTrafficBand +
			": the job ran with --burst-band-quantile 0, or is not kapacity recommend), so the traffic forecast is not drawn; " +
			"the Dynamic-Predictive line right of \"now\" is the forecast turned into pods.", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("ConfigMap %s: %w", name, err)
	}
	upper, err := band.UpperOf(metric)
	if err != nil {
		return nil, "", fmt.Errorf("ConfigMap %s: %w", name, err)
	}
	f.Quantile, f.Upper, f.Median = band.Quantile, points(upper), points(band.Median[metric])
	return f, f.note(), nil
}

func points(in []portraitresult.Point) []Point {
	if len(in) == 0 {
		return nil
	}
	out := make([]Point, len(in))
	for i, p := range in {
		out[i] = Point{T: p.Time, V: p.Value}
	}
	return out
}

// quantileName is the upper band's quantile as the page names it ("0.9 quantile").
func (f *Forecast) quantileName() string {
	return strconv.FormatFloat(f.Quantile, 'g', 4, 64) + " quantile"
}

// note says what the traffic chart draws of the forecast, and what it cannot.
func (f *Forecast) note() string {
	s := "The traffic chart draws the forecast of the algorithm job's last run, from ConfigMap " + f.ConfigMap + ": "
	if len(f.Median) > 0 {
		s += "its median and its " + f.quantileName() + " (the upper band a Burst portrait compares the traffic with). "
	} else {
		s += "its " + f.quantileName() + " (the upper band a Burst portrait compares the traffic with); the median forecast is not stored " +
			"by the job that wrote it (kapacity recommend writes it beside the band). "
	}
	s += "The Dynamic-Predictive line right of \"now\" is that forecast turned into pods. Each run replaces the last, so earlier forecasts are not kept."
	if f.Expired {
		s += " It expired at " + f.ExpireTime.UTC().Format(time.RFC3339) + ": the portrait offers nothing until the next run writes a result."
	}
	return s
}

// series are the forecast's lines over [from, to].
func (f *Forecast) series(from, to time.Time) []Series {
	within := func(pts []Point) []Point {
		var out []Point
		for _, p := range pts {
			if !p.T.Before(from) && !p.T.After(to) {
				out = append(out, p)
			}
		}
		return out
	}
	var out []Series
	if len(f.Median) > 0 {
		out = append(out, Series{Name: "median forecast", Class: "forecast", Points: within(f.Median)})
	}
	return append(out, Series{Name: f.quantileName() + " (upper band)", Class: "band", Points: within(f.Upper)})
}

// withForecast adds the forecast to the traffic chart (measured may be nil when the history
// could not be read), reaching right of now to the forecast's last point, at most trafficFuture.
func withForecast(measured *Traffic, f *Forecast, from, now time.Time) *Traffic {
	if f == nil {
		return measured
	}
	t := measured
	if t == nil {
		t = &Traffic{Metric: f.Metric, From: from, To: now}
	}
	if n := len(f.Upper); n > 0 && f.Upper[n-1].T.After(t.To) {
		t.To = minTime(f.Upper[n-1].T, now.Add(trafficFuture))
	}
	t.Series = append(t.Series, f.series(t.From, t.To)...)
	return t
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
