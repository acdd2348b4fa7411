package query

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/kapacitystack/kapacity/adapter/discovery"
	"github.com/kapacitystack/kapacity/historyapi/v1alpha1"
)

// authorize asks whether the caller in ctx may read what q reads, as a request for q's history
// resource (podresources, objects, ...) in the namespace the query actually reads. Front ends
// authorize the namespace a request names; the engine knows better: an object of a cluster-scoped
// kind, an external metric of a rule with namespaced: false, and a query without a namespace read
// beyond any one namespace, so they need cluster-scoped rights whatever namespace was named.
// Both front ends (the aggregated API and gRPC) rely on this, so it fails closed: no caller, no
// authorizer, or an authorizer error refuses the query.
func (e *Engine) authorize(ctx context.Context, q v1alpha1.Query, reg *discovery.Registry) error {
	resource := q.Kind.Resource()
	if resource == "" {
		return apierrors.NewBadRequest(fmt.Sprintf("unknown query kind %q", q.Kind))
	}
	gr := v1alpha1.SchemeGroupVersion.WithResource(resource).GroupResource()
	verb, name := "get", q.Name
	switch {
	case q.Kind == v1alpha1.External:
		name = q.Metric
	case q.Name == "":
		verb = "list"
	}
	caller, ok := request.UserFrom(ctx)
	if !ok || caller == nil {
		return apierrors.NewForbidden(gr, name, errors.New("the request has no authenticated user"))
	}
	if e.opts.Authorizer == nil {
		return apierrors.NewForbidden(gr, name, errors.New("the history engine has no authorizer"))
	}
	scope, why := e.readScope(q, reg)
	decision, reason, err := e.opts.Authorizer.Authorize(ctx, authorizer.AttributesRecord{
		User: caller, Verb: verb, Namespace: scope, APIGroup: v1alpha1.GroupName, APIVersion: v1alpha1.Version,
		Resource: resource, Name: name, ResourceRequest: true,
	})
	if decision == authorizer.DecisionAllow {
		return nil
	}
	if err != nil {
		return apierrors.NewInternalError(fmt.Errorf("authorizing %s %s for %q: %w", verb, gr, caller.GetName(), err))
	}
	where := fmt.Sprintf("in the namespace %q", scope)
	if scope == "" {
		where = "at the cluster scope (" + why + ")"
	}
	msg := fmt.Sprintf("user %q cannot %s %s %s", caller.GetName(), verb, gr, where)
	if reason != "" {
		msg += ": " + reason
	}
	return apierrors.NewForbidden(gr, name, errors.New(msg))
}

// readScope returns the namespace q reads, "" when it reads beyond one namespace, and why.
func (e *Engine) readScope(q v1alpha1.Query, reg *discovery.Registry) (namespace, why string) {
	switch q.Kind {
	case v1alpha1.Object:
		if q.Workload.Kind != "" {
			if mapping, err := e.mapper.RESTMapping(q.Workload); err == nil && mapping.Scope.Name() != meta.RESTScopeNameNamespace {
				return "", q.Workload.String() + " is cluster-scoped"
			}
		}
	case v1alpha1.External:
		if reg != nil {
			if ref, ok := reg.External[q.Metric]; ok && !ref.Rule.Query.Namespaced() {
				return "", "the rule of " + q.Metric + " has namespaced: false, so it reads every namespace"
			}
		}
	}
	if q.Namespace == "" {
		return "", "no namespace given"
	}
	return q.Namespace, ""
}
