package replay

// oraclePolicy knows the future: at every tick it keeps the largest replica count needed before a pod
// started now could be ready, so that every pod needed later was started exactly one start-up delay
// ahead, and none is kept longer than some instant needs it. No policy can do better on the same grid.
type oraclePolicy struct {
	required []int // per tick, the replicas the demand needs
	lead     int   // the start-up delay in ticks, rounded up
}

func (p *oraclePolicy) decideAt(tick int) (total, online int) {
	n := 0
	for k := tick; k <= tick+p.lead && k < len(p.required); k++ {
		n = max(n, p.required[k])
	}
	return n, n
}
