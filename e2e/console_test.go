package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The console against a real Chronicle (in process, SQLite): search by
// actor, page through 250 events, the live tail, an event's detail, both
// at a desktop's width and a phone's.
func TestConsoleEvents(t *testing.T) {
	t.Parallel()
	p := serve(t, nil)
	checkConsoleHeaders(t, p)
	p.do("POST", "/entities", `{"key":"org:acme","name":"Acme Corp","attributes":{"tier":"enterprise","region":"eu-west"}}`).expect(t, 201, "created")
	var batch []map[string]any
	actors := []string{"alice@example.com", "bob@example.com", "carol@example.com"}
	types := []string{"security", "user", "billing"}
	actions := []string{"login", "update", "export"}
	for i := range 250 {
		batch = append(batch, map[string]any{
			"actor": actors[i%3], "action": actions[i%3], "resource_type": types[(i/3)%3],
			"resource_id": fmt.Sprintf("r-%03d", i), "correlation_id": fmt.Sprintf("order-%d", i/25),
			"entity_key": "org:acme", "metadata": map[string]string{"ip": fmt.Sprintf("10.0.%d.%d", i/100, i%100), "client": "web"},
		})
	}
	body, _ := json.Marshal(batch)
	p.do("POST", "/events", string(body)).expect(t, 202, `"accepted":250`)
	eventually(t, 10*time.Second, "250 events stored", func() bool { return len(p.allEvents("")) == 250 })
	all := ids(p.allEvents(""))

	tb := newTab(t, "Asia/Kolkata")
	tb.open(p.url + "/")
	tb.wait("the first page", `document.querySelectorAll('#events tbody tr[data-id]').length === 100 &&
		document.querySelector('#summary').textContent.startsWith('250 events match')`)
	if got := tb.rows(); !slices.Equal(got, all[:100]) {
		t.Fatalf("first page: %d rows, not the 100 newest events", len(got))
	}
	checkLabelled(tb)
	// Times in the viewer's zone, UTC on hover.
	first := p.allEvents("")[0]
	if title := value[string](tb, `document.querySelector('#events tbody time').title`); title != strings.Replace(strings.Replace(first.Timestamp, "T", " ", 1), "Z", " UTC", 1) {
		t.Errorf("time title %q for timestamp %s", title, first.Timestamp)
	}
	if zone := value[string](tb, `document.querySelector('#events thead .zone').textContent`); zone != "(Asia/Kolkata)" && zone != "(Asia/Calcutta)" {
		t.Errorf("zone shown %q", zone)
	}
	// India is 5h30 ahead of UTC: its minutes and seconds differ from UTC's.
	dt, _ := time.Parse(time.RFC3339Nano, first.Timestamp)
	if shown := value[string](tb, `document.querySelector('#events tbody time').textContent`); !strings.Contains(shown, dt.In(time.FixedZone("IST", 5*3600+1800)).Format(":04:05.000")) {
		t.Errorf("the first row's time %q is not %s in Asia/Kolkata", shown, first.Timestamp)
	}
	tb.screenshot("console-events")

	t.Run("SearchByActor", func(t *testing.T) {
		tb.do(chromedp.SendKeys(chromedp.ID("f-actor"), "Carol@Example.com"), chromedp.Click(chromedp.CSS(`form.filters button[type=submit]`)))
		tb.wait("carol's events", `location.search === '?actor=Carol%40Example.com' &&
			document.querySelector('#summary').textContent.startsWith('83 events match') &&
			document.querySelectorAll('#events tbody tr[data-id]').length === 83`)
		want := ids(p.allEvents("actor=carol@example.com"))
		if got := tb.rows(); !slices.Equal(got, want) {
			t.Fatalf("rows %v, want carol's %d events %v", got, len(want), want)
		}
		if others := value[int](tb, `[...document.querySelectorAll('#events tbody tr[data-id] td:nth-child(2)')].filter(td => td.textContent !== 'carol@example.com').length`); others != 0 {
			t.Fatalf("%d rows of another actor", others)
		}
		// The URL is shareable: opened afresh it shows the same.
		tb.open(p.url + "/?actor=carol%40example.com")
		tb.wait("the shared search", `document.querySelectorAll('#events tbody tr[data-id]').length === 83 &&
			document.querySelector('#f-actor').value === 'carol@example.com'`)
	})

	t.Run("PageThrough250", func(t *testing.T) {
		tb.do(chromedp.Click(chromedp.CSS(`form.filters a.button`)))
		tb.wait("all events", `location.search === '' && document.querySelectorAll('#events tbody tr[data-id]').length === 100`)
		var pages [][]string
		pages = append(pages, tb.rows())
		for _, n := range []int{100, 50} {
			last := pages[len(pages)-1][0]
			tb.do(chromedp.Click(chromedp.CSS(`.pager a.older`)))
			tb.wait("the next page", fmt.Sprintf(`document.querySelectorAll('#events tbody tr[data-id]').length === %d &&
				document.querySelector('#events tbody tr[data-id]').dataset.id !== %q`, n, last))
			pages = append(pages, tb.rows())
		}
		if got := slices.Concat(pages...); !slices.Equal(got, all) {
			t.Fatalf("three pages hold %d events, not the 250 in order", len(got))
		}
		if value[bool](tb, `document.querySelector('.pager a.older') !== null`) {
			t.Fatal("an older page after the last one")
		}
		if s := value[string](tb, `document.querySelector('#summary').textContent`); s != "250 events match, 201–250 shown" {
			t.Errorf("summary on the last page: %q", s)
		}
		tb.do(chromedp.Click(chromedp.CSS(`.pager a.newer`)))
		tb.wait("the second page again", fmt.Sprintf(`document.querySelector('#events tbody tr[data-id]').dataset.id === %q`, pages[1][0]))
		if got := tb.rows(); !slices.Equal(got, pages[1]) {
			t.Fatal("newer page differs from the second page")
		}
	})

	var tailed string
	t.Run("LiveTail", func(t *testing.T) {
		tb.open(p.url + "/")
		tb.wait("the first page", `document.querySelectorAll('#events tbody tr[data-id]').length === 100`)
		tb.do(chromedp.Click(chromedp.ID("tail")))
		tb.wait("the tail to stream", `document.querySelector('#tail-state').textContent === 'streaming, live'`)
		var a struct{ ID string }
		p.do("POST", "/events", `{"actor":"dave@example.com","action":"login","resource_type":"security","resource_id":"s-9",
			"correlation_id":"order-3","entity_key":"org:acme","metadata":{"ip":"192.0.2.7","client":"cli"}}`).json(t, &a)
		tailed = a.ID
		tb.wait("the posted event at the top", fmt.Sprintf(`document.querySelector('#events tbody tr').dataset.id === %q &&
			document.querySelector('#events tbody tr').classList.contains('fresh')`, a.ID))
		if s := value[string](tb, `document.querySelector('#summary').textContent`); s != "251 events match, 1–101 shown" {
			t.Errorf("summary after the tail added one: %q", s)
		}
		tb.screenshot("console-tail")
		// Paused, it adds nothing.
		tb.do(chromedp.Click(chromedp.ID("tail")))
		tb.wait("the tail paused", `document.querySelector('#tail').getAttribute('aria-pressed') === 'false'`)
		p.do("POST", "/events", `{"actor":"erin@example.com","action":"login","resource_type":"security","resource_id":"s-10"}`).expect(t, 202, "accepted")
		eventually(t, 5*time.Second, "erin's event stored", func() bool { return len(p.allEvents("actor=erin@example.com")) == 1 })
		if n := len(tb.rows()); n != 101 {
			t.Fatalf("%d rows while paused, want 101", n)
		}
	})

	t.Run("Detail", func(t *testing.T) {
		tb.do(chromedp.Click(chromedp.CSS(fmt.Sprintf(`#events tr[data-id=%q] a.open`, tailed))))
		tb.wait("the event's detail", `document.querySelector('#history') !== null && document.querySelector('#group') !== null &&
			document.querySelector('#entity-h') !== null && document.querySelector('#entity-h').parentElement.textContent.includes('Acme Corp')`)
		if h1 := value[string](tb, `document.querySelector('h1').textContent`); h1 != "dave@example.com login security/s-9" {
			t.Errorf("heading %q", h1)
		}
		fields := value[map[string]string](tb, `Object.fromEntries([...document.querySelector('table.fields').rows].map(r => [r.cells[0].textContent, r.cells[1].textContent]))`)
		for k, v := range map[string]string{"ID": tailed, "Actor": "dave@example.com", "Event type": "security.login", "Correlation id": "order-3", "Entity key": "org:acme"} {
			if fields[k] != v {
				t.Errorf("field %s = %q, want %q", k, fields[k], v)
			}
		}
		md := value[map[string]string](tb, `Object.fromEntries([...document.querySelectorAll('#metadata tbody tr')].map(r => [r.cells[0].textContent, r.cells[1].textContent]))`)
		for k, v := range map[string]string{"ip": "192.0.2.7", "client": "cli", "entity_name": "Acme Corp", "tier": "enterprise"} {
			if md[k] != v {
				t.Errorf("metadata %s = %q, want %q (all: %v)", k, md[k], v, md)
			}
		}
		// Its correlation group: the 25 events of order-3 and this one.
		tb.wait("the correlation group", `document.querySelectorAll('#group li').length === 26 && document.querySelectorAll('#group li[aria-current]').length === 1`)
		hops := value[[]string](tb, `[...document.querySelectorAll('#history .hop-kind')].map(e => e.textContent)`)
		if len(hops) < 4 || hops[0] != "accepted" || hops[1] != "published" || !slices.Contains(hops, "stored") {
			t.Errorf("history timeline %v", hops)
		}
		// Its place in the verifiable log, checked in the browser once a
		// signed checkpoint holds it.
		tb.wait("the verifiable-log section", `document.querySelector('#proof dd, #proof td') !== null`)
		waitProvable(t, p.url, tailed)
		tb.do(chromedp.Click(chromedp.ID("check-proof")))
		tb.wait("the proof's verdict", `document.querySelector('#proof-verdict') !== null`)
		if v := value[string](tb, `document.querySelector('#proof-verdict').textContent`); !strings.HasPrefix(v, "Verified") {
			t.Errorf("proof verdict %q", v)
		}
		if v := value[string](tb, `document.querySelector('#proof').textContent`); !strings.Contains(v, "recomputed from the event") || !strings.Contains(v, "valid, by chronicle.local/audit-log+") {
			t.Errorf("proof section %q: want the leaf recomputed and the signature checked", v)
		}
		tb.screenshot("console-detail")
	})

	t.Run("Phone", func(t *testing.T) {
		tb.do(chromedp.EmulateViewport(375, 812, chromedp.EmulateMobile))
		for _, v := range []struct{ name, url, ready string }{
			{"console-detail-375", "/?event=" + tailed, `document.querySelector('#history') !== null`},
			{"console-events-375", "/", `document.querySelectorAll('#events tbody tr[data-id]').length === 100`},
		} {
			tb.open(p.url + v.url)
			tb.wait(v.name, v.ready)
			if w := value[int](tb, `document.documentElement.scrollWidth`); w > 375 {
				t.Errorf("%s: the page is %dpx wide on a 375px screen: %v", v.name, w, value[[]string](tb, `[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 376).slice(0, 8).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))`))
			}
			tb.screenshot(v.name)
		}
	})
}

// A dead letter made for real: an event no route matched, in the unrouted
// queue of a Chronicle whose routing had no catch-all; restarted with the
// built-in routing, the console replays it and the depth falls; another
// is purged after a confirmation. With API keys: an admin key sees the
// actions, a read key does not.
func TestConsoleDeadLetters(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "chronicle.db")
	routes := filepath.Join(dir, "security-only.toml")
	writeFile(t, routes, `
[exchanges.audit_events]
type = "topic"
durable = true
[exchanges.dead_letter]
type = "direct"
durable = true
[[routes]]
name = "security_events"
exchange = "audit_events"
queue = "chronicle.security"
routing_key = "security.#"
dead_letter_exchange = "dead_letter"
dead_letter_queue = "chronicle.security.dlq"
[[consumers]]
name = "default"
routes = ["security_events"]
`, 0o644)
	first := serve(t, map[string]string{"CHRONICLE_SQLITE_PATH": db, "CHRONICLE_CONFIG": routes})
	var dead []string
	for _, who := range []string{"frank@example.com", "grace@example.com"} {
		var a struct{ ID string }
		first.do("POST", "/events", `{"actor":"`+who+`","action":"created","resource_type":"user","resource_id":"u-1"}`).json(t, &a)
		dead = append(dead, a.ID)
	}
	eventually(t, 5*time.Second, "two unrouted events", func() bool {
		var qs []struct {
			Queue string
			Depth int
		}
		first.do("GET", "/dlq", "").json(t, &qs)
		for _, q := range qs {
			if q.Queue == "chronicle.unrouted" {
				return q.Depth == 2
			}
		}
		return false
	})
	if code := first.stop(syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}

	const admin, reader = "admin-key-0123456789abcdef", "read-key-0123456789abcdef"
	keys := filepath.Join(dir, "keys")
	writeFile(t, keys, admin+":admin\n"+reader+":read\n", 0o600)
	p := serve(t, map[string]string{"CHRONICLE_SQLITE_PATH": db, "CHRONICLE_API_KEYS_FILE": keys})

	tb := newTab(t, "UTC")
	tb.open(p.url + "/?view=queues")
	tb.wait("the sign-in form", `document.querySelector('#api-key') !== null`)
	tb.do(chromedp.SendKeys(chromedp.ID("api-key"), "not-a-key-of-this-service"), chromedp.Click(chromedp.CSS(`form.signin button`)))
	tb.wait("the key refused", `document.querySelector('#signin-error')?.textContent.includes('not known')`)
	tb.do(chromedp.SendKeys(chromedp.ID("api-key"), admin), chromedp.Click(chromedp.CSS(`form.signin button`)))
	tb.wait("the dead-letter queues", `document.querySelector('#dead-letter-queues tr[data-queue="chronicle.unrouted"] .depth')?.textContent === '2'`)
	if s := value[string](tb, `document.querySelector('#who .scopes').textContent`); s != "ingest · read · admin" {
		t.Errorf("scopes shown %q", s)
	}
	tb.do(chromedp.Click(chromedp.CSS(`#dead-letter-queues tr[data-queue="chronicle.unrouted"] a`)))
	tb.wait("the dead letters", `document.querySelectorAll('#letters li.letter').length === 2`)
	reasons := value[[]string](tb, `[...document.querySelectorAll('#letters .reason')].map(e => e.textContent)`)
	if len(reasons) != 2 || reasons[0] != "unroutable: no route matches user.created" {
		t.Fatalf("reasons shown: %v", reasons)
	}
	tb.screenshot("console-dead-letters")

	// Replay the first: the built-in routing now has routes for it.
	tb.do(chromedp.Click(chromedp.CSS(fmt.Sprintf(`#letters li[data-id=%q] button.replay`, dead[0]))))
	tb.wait("the depth to fall", `document.querySelector('#dead-letter-queues tr[data-queue="chronicle.unrouted"] .depth').textContent === '1' &&
		document.querySelectorAll('#letters li.letter').length === 1 && document.querySelector('#toast').textContent.startsWith('Replayed 1 message')`)
	eventually(t, 10*time.Second, "the replayed event stored", func() bool { return p.withKey(reader, "GET", "/events/"+dead[0], "").Status == 200 })

	// Purge the other: asked first; Cancel keeps it.
	purge := chromedp.Click(chromedp.CSS(fmt.Sprintf(`#letters li[data-id=%q] button.purge`, dead[1])))
	tb.do(purge)
	tb.wait("the confirmation", `document.querySelector('dialog.confirm')?.open === true`)
	tb.do(chromedp.Click(chromedp.CSS(`dialog.confirm button[value=cancel]`)))
	tb.wait("the dialog closed", `document.querySelector('dialog.confirm') === null`)
	if n := len(deadLetters(t, p, admin, "chronicle.unrouted")); n != 1 {
		t.Fatalf("after Cancel %d dead letters, want 1", n)
	}
	tb.do(purge)
	tb.wait("the confirmation", `document.querySelector('dialog.confirm')?.open === true`)
	tb.screenshot("console-purge-confirm")
	tb.do(chromedp.Click(chromedp.CSS(`dialog.confirm button[value=confirm]`)))
	tb.wait("the queue empty", `document.querySelector('#dead-letter-queues tr[data-queue="chronicle.unrouted"] .depth').textContent === '0'`)
	if n := len(deadLetters(t, p, admin, "chronicle.unrouted")); n != 0 {
		t.Fatalf("after the purge %d dead letters", n)
	}
	if p.withKey(reader, "GET", "/events/"+dead[1], "").Status != 404 {
		t.Fatal("the purged event was stored")
	}

	t.Run("ReadKey", func(t *testing.T) {
		rt := newTab(t, "UTC")
		rt.open(p.url + "/")
		rt.wait("the sign-in form", `document.querySelector('#api-key') !== null`)
		rt.do(chromedp.SendKeys(chromedp.ID("api-key"), reader), chromedp.Click(chromedp.CSS(`form.signin button`)))
		rt.wait("the replayed event", fmt.Sprintf(`document.querySelector('#events tr[data-id=%q]') !== null`, dead[0]))
		if s := value[string](rt, `document.querySelector('#who .scopes').textContent`); s != "read" {
			t.Errorf("scopes shown %q", s)
		}
		if value[bool](rt, `!document.querySelector('nav a[data-view=queues]').closest('li').hidden`) {
			t.Error("a read key is offered the queues")
		}
		rt.open(p.url + "/?view=queues")
		rt.wait("the queues view", `document.querySelector('#no-admin') !== null`)
		if n := value[int](rt, `[...document.querySelectorAll('button')].filter(b => /replay|purge/i.test(b.textContent)).length`); n != 0 {
			t.Fatalf("%d replay or purge buttons for a read key", n)
		}
		rt.screenshot("console-read-key")
	})
}

// deadLetters peeks at a dead-letter queue through the API.
func deadLetters(t *testing.T, p *proc, key, queue string) []map[string]any {
	t.Helper()
	var out []map[string]any
	p.withKey(key, "GET", "/dlq/"+queue, "").json(t, &out)
	return out
}

// Markup in every field of an event is shown as text and never run: in
// the list, as the live tail inserts it, and in the detail.
func TestConsoleShowsMarkupAsText(t *testing.T) {
	t.Parallel()
	p := serve(t, nil)
	const (
		actor  = `<script>alert("actor")</script>`
		action = `<img src=x onerror=alert("action")>`
		resID  = `"><svg onload=alert(1)>`
		corr   = `<iframe src="javascript:alert(2)"></iframe>`
		entKey = `<a href="javascript:alert(3)">acme</a>`
		name   = `<b onmouseover=alert(4)>Acme</b>`
	)
	mdKey, mdValue := `<i>note</i>`, "<img src=x onerror=alert(5)>\n<style>body{display:none}</style>"
	evt, _ := json.Marshal(map[string]any{"actor": actor, "action": action, "resource_type": "user", "resource_id": resID,
		"correlation_id": corr, "entity_key": entKey, "metadata": map[string]string{mdKey: mdValue}})
	ent, _ := json.Marshal(map[string]any{"key": entKey, "name": name, "attributes": map[string]string{"<u>tier</u>": `<script>alert(6)</script>`}})
	p.do("POST", "/entities", string(ent)).expect(t, 201, "created")
	p.do("POST", "/events", string(evt)).expect(t, 202, "accepted")
	eventually(t, 5*time.Second, "the event stored", func() bool { return len(p.allEvents("")) == 1 })

	tb := newTab(t, "UTC")
	tb.open(p.url + "/")
	tb.wait("the event", `document.querySelectorAll('#events tbody tr[data-id]').length === 1`)
	// The same event again, through the live tail.
	tb.do(chromedp.Click(chromedp.ID("tail")))
	tb.wait("the tail to stream", `document.querySelector('#tail-state').textContent === 'streaming, live'`)
	var a struct{ ID string }
	p.do("POST", "/events", string(evt)).json(t, &a)
	tb.wait("the tailed event", fmt.Sprintf(`document.querySelector('#events tbody tr').dataset.id === %q`, a.ID))
	cells := value[[][]string](tb, `[...document.querySelectorAll('#events tbody tr')].map(r => [...r.cells].map(c => c.textContent))`)
	for _, row := range cells {
		want := []string{actor, action, "user/" + resID, corr, entKey}
		got := []string{row[1], row[2], row[3], row[5], row[6]}
		if !slices.Equal(got, want) {
			t.Errorf("row shows %q, want the text %q", got, want)
		}
	}
	checkNothingInjected(tb)
	tb.screenshot("console-markup-list")

	tb.do(chromedp.Click(chromedp.CSS(fmt.Sprintf(`#events tr[data-id=%q] a.open`, a.ID))))
	tb.wait("the detail", `document.querySelector('#history') !== null && document.querySelector('#entity-h').parentElement.querySelector('table') !== null`)
	if h1 := value[string](tb, `document.querySelector('h1').textContent`); h1 != actor+" "+action+" user/"+resID {
		t.Errorf("heading %q", h1)
	}
	md := value[map[string]string](tb, `Object.fromEntries([...document.querySelectorAll('#metadata tbody tr')].map(r => [r.cells[0].textContent, r.cells[1].textContent]))`)
	if md[mdKey] != mdValue || md["entity_name"] != name || md["<u>tier</u>"] != `<script>alert(6)</script>` {
		t.Errorf("metadata shown %q", md)
	}
	if title := value[string](tb, `document.title`); !strings.HasPrefix(title, actor) {
		t.Errorf("title %q", title)
	}
	checkNothingInjected(tb)
	tb.screenshot("console-markup-detail")
	if n := tb.dialogs.Load(); n != 0 {
		t.Fatalf("%d dialogs opened", n)
	}
}

// checkNothingInjected fails when the page holds an element or a link
// that only an event's text could have put there.
func checkNothingInjected(tb *tab) {
	tb.t.Helper()
	got := value[map[string]int](tb, `({
		scripts: document.scripts.length,
		img: document.querySelectorAll('img').length,
		svg: document.querySelectorAll('main svg').length,
		iframe: document.querySelectorAll('iframe').length,
		style: document.querySelectorAll('style, [style]').length,
		handlers: [...document.querySelectorAll('*')].filter(e => [...e.attributes].some(a => a.name.startsWith('on'))).length,
		js: document.querySelectorAll('a[href^="javascript:" i]').length,
		bold: document.querySelectorAll('main b, main i, main u').length,
	})`)
	want := map[string]int{"scripts": 1, "img": 0, "svg": 0, "iframe": 0, "style": 0, "handlers": 0, "js": 0, "bold": 0}
	for k, v := range want {
		if got[k] != v {
			tb.t.Errorf("%s: %d in the page, want %d (markup from an event was parsed)", k, got[k], v)
		}
	}
}

// checkLabelled fails when a form control of the page has no label.
func checkLabelled(tb *tab) {
	tb.t.Helper()
	unlabelled := value[[]string](tb, `[...document.querySelectorAll('input, select, textarea, button')]
		.filter(e => !(e.labels?.length || e.getAttribute('aria-label') || e.textContent.trim()))
		.map(e => e.outerHTML)`)
	if len(unlabelled) > 0 {
		tb.t.Errorf("controls without a label: %v", unlabelled)
	}
}

// checkConsoleHeaders checks what the console's responses say to the
// browser, and that other paths still answer as the API does.
func checkConsoleHeaders(t *testing.T, p *proc) {
	t.Helper()
	for _, path := range []string{"/", "/console/js/app.js", "/console/console.css"} {
		r := p.do("GET", path, "")
		if r.Status != 200 {
			t.Fatalf("GET %s: %d", path, r.Status)
		}
		csp := r.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("GET %s: Content-Security-Policy %q", path, csp)
		}
		if r.Header.Get("X-Content-Type-Options") != "nosniff" || r.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("GET %s: headers %v", path, r.Header)
		}
	}
	p.do("GET", "/nowhere", "").expect(t, 404, `{"error":"not found: /nowhere"}`)
	p.do("GET", "/console/nowhere.js", "").expect(t, 404, `"error"`)
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func ids(events []event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

// waitProvable waits until a signed checkpoint holds the event id.
func waitProvable(t *testing.T, url, id string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		res, err := http.Get(url + "/events/" + id + "/proof")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("event %s is not provable after 15s: %v %v", id, res, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
