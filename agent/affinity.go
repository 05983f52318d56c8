package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/ovs-dlb/dlb/ofctrl"
	"github.com/ovs-dlb/dlb/pipeline"
)

// OpenFlow idle timeouts stop at 65,535 s; a group may ask for up to a day
// (lb.MaxAffinityTimeout). Its learn action then gives the learned flows no
// idle timeout, and the agent deletes those idle for longer than the
// group's timeout itself, every affinityExpiryEvery.
const affinityExpiryEvery = 30 * time.Second

// runAffinityExpiry expires long-timeout affinity entries until ctx ends.
func (r *reconciler) runAffinityExpiry(ctx context.Context) {
	t := time.NewTicker(affinityExpiryEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := r.expireAffinity(ctx)
		switch {
		case err != nil:
			r.log.Warn("expiring affinity entries", "err", err)
		case n > 0:
			r.log.Info("expired idle affinity entries", "flows", n)
		}
	}
}

// expireAffinity deletes the learned flows of groups whose timeout is too
// long for OpenFlow that have been idle for longer than it.
func (r *reconciler) expireAffinity(ctx context.Context) (int, error) {
	r.mu.Lock()
	c := r.conn
	long := map[uint32]time.Duration{}
	for svc, s := range r.affinity {
		if s > pipeline.MaxLearnedIdle {
			long[svc] = time.Duration(s) * time.Second
		}
	}
	r.mu.Unlock()
	if c == nil || len(long) == 0 {
		return 0, nil
	}
	return ExpireLearned(ctx, c, r.cfg.Table(pipeline.TableAffinity), long)
}

// ExpireLearned deletes the learned affinity flows of table idle for at
// least their service's timeout (c is an *ofctrl.Conn). The agent runs it
// every affinityExpiryEvery; it is exported for the end-to-end test that
// checks it against real OVS.
func ExpireLearned(ctx context.Context, c switchConn, table uint8, timeouts map[uint32]time.Duration) (int, error) {
	fs, err := c.DumpFlows(ctx, table, pipeline.Cookie(pipeline.KindAffinity, 0, 0), pipeline.CookieKindMask)
	if err != nil {
		return 0, fmt.Errorf("dump affinity entries: %w", err)
	}
	var mods []ofctrl.Mod
	for _, f := range fs {
		if t, ok := timeouts[pipeline.CookieService(f.Flow.Cookie)]; ok && f.IdleAge >= t {
			mods = append(mods, f.Flow.DeleteStrict())
		}
	}
	if len(mods) == 0 {
		return 0, nil
	}
	if err := c.Apply(ctx, mods...); err != nil {
		return 0, fmt.Errorf("delete idle affinity entries: %w", err)
	}
	return len(mods), nil
}
