package cli

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/api"
	"github.com/chronicle-audit/chronicle/client"
)

// outCommands adds export and tail: events out of the log.
func outCommands(register func(*command)) {
	register(&command{
		name:    "export",
		args:    "[--format ndjson|csv] [filters] > FILE",
		summary: "write every event that matches the filters, in log order, as NDJSON or CSV with a trailer (GET /events/export)",
		flags: func(fs *flag.FlagSet) {
			addClientFlags(fs)
			addFilterFlags(fs)
			fs.String("format", "ndjson", "ndjson or csv")
			fs.Int64("from-seq", 0, "the first seq of the log to export")
			fs.Int64("to-seq", 0, "export up to this seq, exclusive (default: the log as it is when the export starts)")
		},
		run: runExport,
	})
	register(&command{
		name:    "tail",
		args:    "[filters] [--from-seq N]",
		summary: "print events that match the filters as they are stored (GET /events/stream), reconnecting where it stopped",
		flags: func(fs *flag.FlagSet) {
			addClientFlags(fs)
			addFilterFlags(fs)
			fs.Int64("from-seq", -1, "start at this seq of the log (default: the events stored from now on)")
		},
		run: runTail,
	})
}

// exportEncoder writes an export as the service does.
type exportEncoder interface {
	event(e *chronicle.Event) error
	trailer(t api.ExportTrailer) error
}

type ndjsonEncoder struct{ enc *json.Encoder }

func (n ndjsonEncoder) event(e *chronicle.Event) error    { return n.enc.Encode(e) }
func (n ndjsonEncoder) trailer(t api.ExportTrailer) error { return n.enc.Encode(t) }

type csvEncoder struct{ w *csv.Writer }

func (c csvEncoder) event(e *chronicle.Event) error {
	rec, err := api.CSVRecord(e)
	if err != nil {
		return err
	}
	return c.w.Write(rec)
}

func (c csvEncoder) trailer(t api.ExportTrailer) error {
	rec, err := api.CSVTrailerRecord(t)
	if err != nil {
		return err
	}
	if err := c.w.Write(rec); err != nil {
		return err
	}
	c.w.Flush()
	return c.w.Error()
}

func runExport(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	q, err := eventsQuery(fs, time.Now())
	if err != nil {
		return err
	}
	eq := client.ExportQuery{Query: q, Format: flagValue[string](fs, "format"),
		FromSeq: flagValue[int64](fs, "from-seq"), ToSeq: flagValue[int64](fs, "to-seq")}
	if eq.Format != "ndjson" && eq.Format != "csv" {
		return usagef("--format must be ndjson or csv, not %q", eq.Format)
	}
	if eq.FromSeq < 0 || eq.ToSeq < 0 {
		return usagef("--from-seq and --to-seq must not be negative")
	}
	c, err := clientFromFlags(env, fs, client.Options{})
	if err != nil {
		return err
	}
	defer c.Close()

	out := bufio.NewWriterSize(env.Stdout, 256<<10)
	var enc exportEncoder = ndjsonEncoder{json.NewEncoder(out)}
	if eq.Format == "csv" {
		w := csv.NewWriter(out)
		w.UseCRLF = true
		if err := w.Write(api.CSVColumns); err != nil {
			return err
		}
		enc = csvEncoder{w}
	}
	progress := newProgress(env)
	var trailer api.ExportTrailer
	for e, err := range c.Export(ctx, eq) {
		if err != nil {
			progress.done(trailer)
			out.Flush()
			// What was written stays, without a trailer: it reads as cut
			// off, which it is.
			return err
		}
		if err := enc.event(e); err != nil {
			return err
		}
		trailer.Trailer.Count++
		trailer.Trailer.LastSeq = e.Seq
		progress.update(trailer)
	}
	// The service's trailer checked out: the file gets its own.
	if err := enc.trailer(trailer); err != nil {
		return err
	}
	progress.done(trailer)
	return out.Flush()
}

// progress is a line on stderr, rewritten a few times a second, when
// stderr is a terminal; nothing otherwise.
type progress struct {
	w     io.Writer
	start time.Time
	last  time.Time
}

func newProgress(env *Env) *progress {
	if !env.StderrIsTerminal {
		return nil
	}
	return &progress{w: env.Stderr, start: time.Now()}
}

func (p *progress) line(t api.ExportTrailer) {
	seq := "-"
	if t.Trailer.LastSeq != nil {
		seq = fmt.Sprint(*t.Trailer.LastSeq)
	}
	el := time.Since(p.start)
	fmt.Fprintf(p.w, "\r\033[K%d events, last seq %s, %.0f events/s, %s", t.Trailer.Count, seq,
		float64(t.Trailer.Count)/max(el.Seconds(), 0.001), el.Round(time.Second))
}

func (p *progress) update(t api.ExportTrailer) {
	if p == nil || time.Since(p.last) < 250*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.line(t)
}

func (p *progress) done(t api.ExportTrailer) {
	if p == nil {
		return
	}
	p.line(t)
	fmt.Fprintln(p.w)
}

func runTail(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	q, err := eventsQuery(fs, time.Now())
	if err != nil {
		return err
	}
	tq := client.TailQuery{Query: q, OnRetry: func(err error, wait time.Duration) {
		fmt.Fprintf(env.Stderr, "%v; reconnecting in %v\n", err, wait.Round(time.Millisecond))
	}}
	if from := flagValue[int64](fs, "from-seq"); from >= 0 {
		tq.After = new(from - 1)
	} else if from != -1 {
		return usagef("--from-seq must not be negative")
	}
	c, err := clientFromFlags(env, fs, client.Options{})
	if err != nil {
		return err
	}
	defer c.Close()
	p := &eventPrinter{w: env.Stdout}
	asJSON := flagValue[bool](fs, "json")
	for e, err := range c.Tail(ctx, tq) {
		if err != nil {
			return err
		}
		if asJSON {
			data, err := json.Marshal(e)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(env.Stdout, "%s\n", data)
			if err != nil {
				return err
			}
			continue
		}
		if err := p.page([]*chronicle.Event{e}); err != nil {
			return err
		}
	}
	// Interrupted (Ctrl-C): a tail ends there.
	return nil
}
