// Package replay answers the question users ask before adopting predictive autoscaling — "on my traffic,
// how many replica-hours would I save and how often would I have been overloaded?" — offline, from a
// traffic trace. It simulates one workload under several policies on the same demand and scores each:
//
//   - hpa: the native HorizontalPodAutoscaler on CPU utilisation, with its default behavior (10 %
//     tolerance, unready pods counted as idle when scaling up, 5-minute scale-down stabilization, scale-up
//     limited to max(+100 %, +4 pods) per 15 s, 15 s sync period) and a lagged metric;
//   - cron: an IHPA with a Cron portrait of one window per hour of day, sized from the training part of the
//     trace (the 95th percentile of the replicas each hour needed) and started one pod start-up earlier;
//   - predictive: an IHPA following Kapacity's predictive portrait — the forecaster (package forecast)
//     trained on the first part of the trace and re-run on the job schedule, sized for a quantile of the
//     forecast traffic (--forecast-quantile, the forecaster's quantile heads), the linear-residual replica
//     estimator (package estimator) fitted on the training part, resampled by the scaling frequency with
//     max and scaled up ahead of time, with gray scale-down;
//   - predictive+reactive: the same, with the HPA algorithm's replicas (held over the HPA's scale-down
//     stabilization window) as a floor (max of the two);
//   - burst: the Reactive portrait plus package burst, run at every sync on a 30 s traffic rate, which
//     scales at once to the traffic projected one start-up ahead when it would overload the pods;
//   - predictive+burst: the predictive portrait plus package burst, with the forecast's 0.9 quantile as
//     the band a burst must leave;
//   - oracle: the smallest replicas that meet the CPU target at every step knowing the future, given the
//     pod start-up delay — the physical limit every other policy is measured against.
//
// The IHPA policies run the executor's own gray planner (package executor/gray), so cutoff pods and the
// pace of gray scale-down are those the manager would produce.
//
// Model. Demand is expressed in pods' worth of CPU: the traffic divided by the per-pod capacity (the load
// one pod serves at 100 % of its CPU request) plus any periodic extra load. A pod serves once its start-up
// delay has passed; pods held in a gray state cost but do not serve. Every policy acts every sync period
// (15 s), the trace value holds over its step, and each tick is scored: replica-seconds of every existing
// pod (starting ones included), seconds with utilisation above the target and above 100 %.
//
// Sweep (Config.Sweep, `--pareto`): the HPA is also replayed at lower and higher targets, and the IHPA
// policies at several forecast quantiles; each policy is compared with the replica-hours an HPA tuned to
// the same minutes over 100 % needs (interpolated on the HPA's frontier), the alternative a user really
// has.
package replay
