package httpapi_test

import (
	"testing"
	"time"

	"github.com/chronicle-audit/chronicle/auth"
	"github.com/chronicle-audit/chronicle/httpapi"
	"github.com/chronicle-audit/chronicle/outbound"
	"github.com/chronicle-audit/chronicle/routing"
)

// The sinks' endpoints: admin only; replay's body checked; an unknown
// sink is 404; /health lists each sink and stays 200.
func TestSinks(t *testing.T) {
	t.Parallel()
	const admin, reader = "admin-0123456789abcdef", "reader-0123456789abcdef"
	kr, err := auth.Parse(admin + ":admin," + reader + ":read")
	if err != nil {
		t.Fatal(err)
	}
	var b *bundle
	b = setup(t, 0, true, func(c *httpapi.Config) {
		m, err := outbound.New(outbound.Config{Store: c.Store.(outbound.Store), Sinks: []*routing.Sink{{
			Name: "archive", Type: routing.SinkFile, Path: t.TempDir(), Format: routing.FormatChronicle, Pattern: "#",
			BatchSize: 10, BatchWait: time.Millisecond, BackoffMin: time.Millisecond, BackoffMax: time.Millisecond,
			RotateBytes: 1 << 20, RotateEvery: time.Hour}}})
		if err != nil {
			t.Fatal(err)
		}
		c.Sinks, c.Auth = m, auth.NewSource(kr)
	})
	expect(t, b.send(t, "GET", "/sinks", "", "Authorization", "Bearer "+reader), 403, `admin scope`)
	expect(t, b.send(t, "GET", "/sinks", "", "Authorization", "Bearer "+admin), 200, `^\[\{"name":"archive","type":"file","format":"chronicle","pattern":"#",.*"status":"starting","cursor":0,"log_size":0,"lag":0`)
	expect(t, b.send(t, "POST", "/sinks/archive/replay", `{}`, "Authorization", "Bearer "+admin), 400, `from is required`)
	expect(t, b.send(t, "POST", "/sinks/archive/replay", `{"from":"x"}`, "Authorization", "Bearer "+admin), 400, `body must be`)
	expect(t, b.send(t, "POST", "/sinks/archive/replay", `{"from":5,"to":5}`, "Authorization", "Bearer "+admin), 400, `to \(5\) must be after from \(5\)`)
	expect(t, b.send(t, "POST", "/sinks/ghost/replay", `{"from":0}`, "Authorization", "Bearer "+admin), 404, `no sink named \\"ghost\\"`)
	expect(t, b.send(t, "POST", "/sinks/archive/replay", `{"from":0}`, "Authorization", "Bearer "+admin), 200, `"sink":"archive","from":0,"to":0,"cursor":0`)
	expect(t, b.do(t, "GET", "/health", ""), 200, `"sinks":\[\{"name":"archive","status":"starting","lag":0\}\]`)
}
