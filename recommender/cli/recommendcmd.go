package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/spf13/cobra"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrlclient "sigs.k8s.io/controller-runtime/pkg/client"

	autoscalingv1alpha1 "github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/config/portraitresult"
	"github.com/kapacitystack/kapacity/recommender/estimator"
)

// NewRecommendCommand returns `kapacity recommend`, the predictive portrait job with the flags of the
// reference's main.py; HP_NAME and HP_NAMESPACE (set by the CronJob controller) default --hp-name and
// --hp-namespace.
func NewRecommendCommand() *cobra.Command {
	def := estimator.DefaultOptions()
	o := RecommendOptions{
		RETestDatasetSizeInSeconds: int64(def.TestSize / time.Second),
		REMinCorrelationAllowed:    def.MinCorrelation,
		REMaxMSEAllowed:            def.MaxMSE,
	}
	var kube KubeOptions
	cmd := &cobra.Command{
		Use:   "recommend",
		Short: "Predictive portrait job: forecast traffic, estimate replicas, write the <hp>-result ConfigMap",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, err := kube.RestConfig()
			if err != nil {
				return err
			}
			hist, err := kube.HistorySource()
			if err != nil {
				return err
			}
			k, err := NewKubeClients(cfg)
			if err != nil {
				return err
			}
			data, err := Recommend(ctx, o, RecommendDeps{History: hist, Portraits: k, Results: k, Requests: k, Now: time.Now()})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote ConfigMap %s/%s: %s %s, %s %s\n", o.HPNamespace, portraitresult.ConfigMapName(o.HPName),
				portraitresult.KeyExpireTime, data[portraitresult.KeyExpireTime], portraitresult.KeyTimeSeries, data[portraitresult.KeyTimeSeries])
			return nil
		},
	}
	f := cmd.Flags()
	kube.AddFlags(f)
	f.StringVar(&o.TSFModelPath, "tsf-model-path", "", "traffic forecasting model directory (kapacity train)")
	f.IntVar(&o.TSFDataloaderNumWorkers, "tsf-dataloader-num-workers", 0, "accepted for compatibility with Kapacity's job; unused")
	f.StringVar(&o.REHistoryLen, "re-history-len", "", "history used to fit the replica estimator, e.g. 24H, 7D, 30min (longer than the model's context)")
	f.Float64Var(&o.RETimeDeltaHours, "re-time-delta-hours", 0, "UTC offset in hours for the estimator's time features")
	f.Int64Var(&o.RETestDatasetSizeInSeconds, "re-test-dataset-size-in-seconds", o.RETestDatasetSizeInSeconds, "size of the estimator's test split")
	f.Float64Var(&o.REMinCorrelationAllowed, "re-min-correlation-allowed", o.REMinCorrelationAllowed, "quality gate: minimum correlation, [0,1]")
	f.Float64Var(&o.REMaxMSEAllowed, "re-max-mse-allowed", o.REMaxMSEAllowed, "quality gate: maximum MSE on the 0..100 resource scale")
	f.StringVar(&o.ScalingFreq, "scaling-freq", "", "resampling frequency of the replica series (max per bucket), e.g. 10min, 1H; ≥ the model's freq")
	f.Int64Var(&o.ScaleUpAheadSeconds, "scale-up-ahead-seconds", 0, "move scale-up points this much earlier")
	f.Float64Var(&o.BandQuantile, "burst-band-quantile", 0.9, "also write this quantile and the median of the traffic forecast (key "+portraitresult.KeyTrafficBand+"): the band a Burst portrait of the same IHPA detects bursts above, drawn by the console; 0: none")
	f.StringVar(&o.HPName, "hp-name", os.Getenv("HP_NAME"), "HorizontalPortrait name (default $HP_NAME)")
	f.StringVar(&o.HPNamespace, "hp-namespace", os.Getenv("HP_NAMESPACE"), "HorizontalPortrait namespace (default $HP_NAMESPACE)")
	for _, n := range []string{"tsf-model-path", "re-history-len", "re-time-delta-hours", "scaling-freq"} {
		_ = cmd.MarkFlagRequired(n)
	}
	return cmd
}

// KubeClients implements PortraitGetter, ResultWriter and RequestsLookup with client-go.
type KubeClients struct {
	Client    kubernetes.Interface
	Portraits ctrlclient.Reader
}

// NewKubeClients builds the clients from a rest config.
func NewKubeClients(cfg *rest.Config) (*KubeClients, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := autoscalingv1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	c, err := ctrlclient.New(cfg, ctrlclient.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("HorizontalPortrait client: %w", err)
	}
	return &KubeClients{Client: cs, Portraits: c}, nil
}

// GetHorizontalPortrait implements PortraitGetter.
func (k *KubeClients) GetHorizontalPortrait(ctx context.Context, namespace, name string) (*autoscalingv1alpha1.HorizontalPortrait, error) {
	hp := &autoscalingv1alpha1.HorizontalPortrait{}
	if err := k.Portraits.Get(ctx, ctrlclient.ObjectKey{Namespace: namespace, Name: name}, hp); err != nil {
		return nil, err
	}
	return hp, nil
}

// WriteResult implements ResultWriter: it creates the ConfigMap owned by hp (controller,
// blockOwnerDeletion) or replaces its data, labelled portraitresult.LabelKey (the manager watches
// only labelled results). Unlike the reference, read errors other than NotFound fail.
func (k *KubeClients) WriteResult(ctx context.Context, hp *autoscalingv1alpha1.HorizontalPortrait, data map[string]string) error {
	cms := k.Client.CoreV1().ConfigMaps(hp.Namespace)
	name := portraitresult.ConfigMapName(hp.Name)
	cm, err := cms.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		cm = &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: hp.Namespace, Labels: map[string]string{portraitresult.LabelKey: portraitresult.LabelValue}, OwnerReferences: []metav1.OwnerReference{{
				APIVersion: autoscalingv1alpha1.GroupVersion.String(), Kind: "HorizontalPortrait", Name: hp.Name, UID: hp.UID,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}}},
			Data: data,
		}
		_, err = cms.Create(ctx, cm, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	cm.Data = data
	if cm.Labels == nil {
		cm.Labels = map[string]string{}
	}
	cm.Labels[portraitresult.LabelKey] = portraitresult.LabelValue
	_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
	return err
}

// PodRequests implements RequestsLookup for Deployments, StatefulSets and ReplicaSets, as the reference:
// the first pod (by name) matching the workload's selector.
func (k *KubeClients) PodRequests(ctx context.Context, namespace string, ref autoscalingv2.CrossVersionObjectReference, resource corev1.ResourceName, container string) (float64, error) {
	var sel *metav1.LabelSelector
	apps := k.Client.AppsV1()
	switch ref.Kind {
	case "Deployment":
		d, err := apps.Deployments(namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return 0, err
		}
		sel = d.Spec.Selector
	case "StatefulSet":
		s, err := apps.StatefulSets(namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return 0, err
		}
		sel = s.Spec.Selector
	case "ReplicaSet":
		r, err := apps.ReplicaSets(namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return 0, err
		}
		sel = r.Spec.Selector
	default:
		return 0, fmt.Errorf("kind %q: Utilization targets support Deployment, StatefulSet and ReplicaSet", ref.Kind)
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return 0, fmt.Errorf("selector of %s %s/%s: %w", ref.Kind, namespace, ref.Name, err)
	}
	pods, err := k.Client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: s.String()})
	if err != nil {
		return 0, err
	}
	if len(pods.Items) == 0 {
		return 0, errors.New("no pod of the workload found")
	}
	slices.SortFunc(pods.Items, func(a, b corev1.Pod) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return sumRequests(pods.Items[0], resource, container), nil
}

func sumRequests(p corev1.Pod, resource corev1.ResourceName, container string) float64 {
	sum := 0.0
	for _, c := range p.Spec.Containers {
		if container != "" && c.Name != container {
			continue
		}
		if q, ok := c.Resources.Requests[resource]; ok {
			sum += q.AsApproximateFloat64()
		}
	}
	return sum
}
