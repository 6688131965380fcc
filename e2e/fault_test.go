package e2e

import (
	"fmt"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// flooder posts events from several goroutines until stopped, and keeps
// the ids that got 202 and how many answers were 503 (which may or may
// not have been stored: the client was told to retry).
type flooder struct {
	p           *proc
	mu          sync.Mutex
	accepted    []string
	unavailable int
	failures    int
	stop        chan struct{}
	wg          sync.WaitGroup
}

// startFlood starts workers posting as fast as answers come, for at most
// limit (every loop is bounded in time).
func startFlood(p *proc, workers int, limit time.Duration) *flooder {
	f := &flooder{p: p, stop: make(chan struct{})}
	deadline := time.Now().Add(limit)
	for w := range workers {
		f.wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				select {
				case <-f.stop:
					return
				default:
				}
				r, err := p.try("POST", "/events", fmt.Sprintf(`{"actor":"w%d@example.com","action":"login","resource_type":"security","resource_id":"%d"}`, w, i))
				f.mu.Lock()
				switch {
				case err != nil:
					f.failures++ // connection refused or cut: not accepted
				case r.Status == 202:
					var a struct{ ID string }
					r.json(p.t, &a)
					f.accepted = append(f.accepted, a.ID)
				case r.Status == 503:
					f.unavailable++
				default:
					p.t.Errorf("POST: %d %s", r.Status, r.Body)
				}
				f.mu.Unlock()
				if err != nil || r.Status != 202 {
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	return f
}

// halt stops the flood and returns what it saw.
func (f *flooder) halt() (accepted []string, unavailable, failures int) {
	close(f.stop)
	f.wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.accepted, f.unavailable, f.failures
}

// Fault (d): SIGTERM to a full in-process service in the middle of a
// flood. It stops intake, drains its queues into SQLite and exits 0; after
// a restart every accepted event is there, once.
func TestFaultSIGTERMMidFlood(t *testing.T) {
	t.Parallel()
	env := map[string]string{"CHRONICLE_SQLITE_PATH": filepath.Join(t.TempDir(), "chronicle.db")}
	p := serve(t, env)
	f := startFlood(p, 16, 30*time.Second)
	time.Sleep(1500 * time.Millisecond)
	code := p.stop(syscall.SIGTERM, 60*time.Second)
	accepted, unavailable, failures := f.halt()
	if code != 0 {
		t.Fatalf("exit code %d after SIGTERM\n%s", code, p.stderr.String())
	}
	q := serve(t, env)
	t.Logf("SIGTERM mid-flood: %d accepted, %d answered 503 while draining, %d refused connections", len(accepted), unavailable, failures)
	storedOnce(t, q, accepted, unavailable+16)
}
