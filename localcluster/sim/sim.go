// Package sim is the workload simulator of the end-to-end tests. For the pods that really exist in
// the test cluster (kwok pods have no containers), it exposes the series that cAdvisor,
// kube-state-metrics and an ingress would: container CPU and memory, pod readiness, and request
// counters. Traffic is set per workload and divided among its ready pods, and each pod's CPU follows
// its share, so scaling decisions feed back into the metrics as they would in production.
package sim

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
)

// Workload describes how the pods of one workload consume resources.
type Workload struct {
	// Namespace and Selector pick the workload's pods.
	Namespace string
	Selector  labels.Selector
	// Container is the container name reported in the container_* series.
	Container string
	// CPUPerRequest is the CPU time one request costs, in core-seconds.
	CPUPerRequest float64
	// IdleCPU is the CPU a pod uses with no traffic, in cores.
	IdleCPU float64
	// MemoryBytes is each pod's working set.
	MemoryBytes float64
}

// Simulator serves the simulated series on /metrics.
type Simulator struct {
	factory informers.SharedInformerFactory
	pods    corelisters.PodLister
	now     func() time.Time

	mu        sync.Mutex
	workloads map[string]*workloadState // by name
	counters  map[podKey]*podCounters
	lastTick  time.Time
}

type workloadState struct {
	Workload
	requestsPerSecond float64
}

type podKey struct{ namespace, name string }

type podCounters struct {
	workload string
	requests float64 // http_requests_total
	cpu      float64 // container_cpu_usage_seconds_total
}

// New returns a simulator watching pods through client. Call Serve to start it.
func New(client kubernetes.Interface) *Simulator {
	factory := informers.NewSharedInformerFactory(client, 0)
	return &Simulator{
		factory:   factory,
		pods:      factory.Core().V1().Pods().Lister(),
		now:       time.Now,
		workloads: map[string]*workloadState{},
		counters:  map[podKey]*podCounters{},
	}
}

// AddWorkload starts simulating a workload under name (used for SetTraffic).
func (s *Simulator) AddWorkload(name string, w Workload) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked()
	s.workloads[name] = &workloadState{Workload: w}
}

// SetTraffic sets the workload's total request rate, shared by its ready pods from now on.
func (s *Simulator) SetTraffic(name string, requestsPerSecond float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked()
	if w, ok := s.workloads[name]; ok {
		w.requestsPerSecond = requestsPerSecond
	}
}

// advanceLocked integrates the counters from the last tick to now with the pods as they are now.
// Scrapes and traffic changes both advance, so counters are exact at every observation.
func (s *Simulator) advanceLocked() {
	now := s.now()
	elapsed := now.Sub(s.lastTick).Seconds()
	if s.lastTick.IsZero() {
		elapsed = 0
	}
	s.lastTick = now
	for name, w := range s.workloads {
		pods, err := s.pods.Pods(w.Namespace).List(w.Selector)
		if err != nil {
			continue // a lister only fails on a bad selector, which AddWorkload's caller built
		}
		var ready []*corev1.Pod
		for _, pod := range pods {
			if pod.DeletionTimestamp == nil && podReady(pod) {
				ready = append(ready, pod)
			}
		}
		perPod := 0.0
		if len(ready) > 0 {
			perPod = w.requestsPerSecond / float64(len(ready))
		}
		for _, pod := range pods {
			key := podKey{pod.Namespace, pod.Name}
			c, ok := s.counters[key]
			if !ok {
				c = &podCounters{workload: name}
				s.counters[key] = c
			}
			rate := 0.0
			if podReady(pod) && pod.DeletionTimestamp == nil {
				rate = perPod
			}
			c.requests += rate * elapsed
			c.cpu += (w.IdleCPU + w.CPUPerRequest*rate) * elapsed
		}
	}
	// Forget pods that are gone so their series go stale, as cAdvisor's would.
	for key := range s.counters {
		if _, err := s.pods.Pods(key.namespace).Get(key.name); err != nil {
			delete(s.counters, key)
		}
	}
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

var (
	requestsDesc = prometheus.NewDesc("http_requests_total", "Requests served by the pod.", []string{"namespace", "pod"}, nil)
	cpuDesc      = prometheus.NewDesc("container_cpu_usage_seconds_total", "Cumulative CPU time.", []string{"namespace", "pod", "container"}, nil)
	memoryDesc   = prometheus.NewDesc("container_memory_working_set_bytes", "Working set.", []string{"namespace", "pod", "container"}, nil)
	readyDesc    = prometheus.NewDesc("kube_pod_status_ready", "Pod readiness, as kube-state-metrics reports it.", []string{"namespace", "pod", "condition"}, nil)
)

// Describe implements prometheus.Collector.
func (s *Simulator) Describe(ch chan<- *prometheus.Desc) {
	ch <- requestsDesc
	ch <- cpuDesc
	ch <- memoryDesc
	ch <- readyDesc
}

// Collect implements prometheus.Collector.
func (s *Simulator) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked()
	for key, c := range s.counters {
		w := s.workloads[c.workload]
		pod, err := s.pods.Pods(key.namespace).Get(key.name)
		if err != nil || w == nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(requestsDesc, prometheus.CounterValue, c.requests, key.namespace, key.name)
		ch <- prometheus.MustNewConstMetric(cpuDesc, prometheus.CounterValue, c.cpu, key.namespace, key.name, w.Container)
		ch <- prometheus.MustNewConstMetric(memoryDesc, prometheus.GaugeValue, w.MemoryBytes, key.namespace, key.name, w.Container)
		for _, condition := range []string{"true", "false"} {
			value := 0.0
			if podReady(pod) == (condition == "true") {
				value = 1
			}
			ch <- prometheus.MustNewConstMetric(readyDesc, prometheus.GaugeValue, value, key.namespace, key.name, condition)
		}
	}
}

// Serve starts the pod informer and the /metrics endpoint on 127.0.0.1, and returns its address.
// Everything stops when ctx ends.
func (s *Simulator) Serve(ctx context.Context) (string, error) {
	s.factory.Start(ctx.Done())
	for typ, synced := range s.factory.WaitForCacheSync(ctx.Done()) {
		if !synced {
			return "", fmt.Errorf("simulator: %v informer did not sync", typ)
		}
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(s); err != nil {
		return "", fmt.Errorf("simulator: registering collector: %w", err)
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("simulator: listening: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = server.Serve(listener) }()
	go func() {
		<-ctx.Done()
		_ = server.Close()
	}()
	return listener.Addr().String(), nil
}
