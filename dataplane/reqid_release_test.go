package dataplane

import (
	"net/netip"
	"testing"
	"time"
)

// TestUserspaceAcquiredBounded: trap policies whose ReqIDs never get an SA
// raise Acquires; what the backend keeps for the once-a-second limit is
// dropped by ReleaseReqID and, for ReqIDs nobody releases, swept once it
// is more than a second old, so it stays bounded.
func TestUserspaceAcquiredBounded(t *testing.T) {
	a, _ := NewMemBindPair(netip.MustParseAddrPort("192.0.2.1:4500"), netip.MustParseAddrPort("192.0.2.2:4500"))
	u := NewUserspace(a, Options{Workers: 1})
	defer u.Close()
	for id := uint32(1); id <= 1000; id++ {
		u.acquire(id)
		u.ReleaseReqID(id)
	}
	u.mu.Lock()
	if len(u.acquired) != 0 {
		t.Fatalf("%d Acquire times kept after their ReqIDs were released", len(u.acquired))
	}
	// Not released (a ReqID released while its Acquire was on the way):
	// entries older than a second are swept when the map is full.
	old := time.Now().Add(-2 * time.Second)
	for id := uint32(1); id <= 2*maxAcquired; id++ {
		u.acquired[id] = old
	}
	u.mu.Unlock()
	u.acquire(9999)
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.acquired) != 1 {
		t.Fatalf("%d Acquire times kept, want only the fresh one", len(u.acquired))
	}
}
