package replay

import "time"

// cronTable is a Cron portrait of one window per hour of day (UTC), as a user would write it after
// looking at the training part: each hour gets the 95th percentile of the replicas it needed.
type cronTable [24]int

const cronQuantile = 0.95

func newCronTable(tr Trace, trainEnd int, w Workload) cronTable {
	var byHour [24][]float64
	for i := 0; i < trainEnd; i++ {
		t := tr.TimeAt(i)
		byHour[t.UTC().Hour()] = append(byHour[t.UTC().Hour()], float64(w.Required(w.Demand(t, tr.Values[i]))))
	}
	var c cronTable
	for h := range c {
		c[h] = w.MinReplicas
		if len(byHour[h]) > 0 {
			c[h] = int(quantile(byHour[h], cronQuantile))
		}
	}
	return c
}

// source starts each window lead earlier (a pod start-up and a sync) and ends it on the hour, so a
// window's pods are ready when its hour begins and stay until it ends.
func (c cronTable) source(lead time.Duration) portraitSource {
	return func(now time.Time, _ observation) (int, bool) {
		return max(c[now.UTC().Hour()], c[now.Add(lead).UTC().Hour()]), true
	}
}
