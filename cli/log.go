package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/client"
	"github.com/chronicle-audit/chronicle/integrity"
)

// logCommands adds the verifiable log's commands: they check what the
// service says against a key the caller pinned, never against the key
// the service sends.
func logCommands(register func(*command)) {
	keyFlag := func(fs *flag.FlagSet) {
		fs.String("key", "", "the log's verifier key (name+hash+base64), or a file holding it (default: CHRONICLE_LOG_KEY)")
	}
	register(&command{
		name:    "log",
		args:    "checkpoint [--save FILE] | key",
		summary: "the verifiable log: fetch the latest checkpoint and check its signature (checkpoint), or print the key the service says it signs with (key)",
		flags: func(fs *flag.FlagSet) {
			addClientFlags(fs)
			keyFlag(fs)
			fs.String("save", "", "checkpoint: also write the verified checkpoint to this file")
		},
		run: runLog,
	})
	register(&command{
		name:    "verify",
		args:    "--checkpoint FILE [--events FILE.ndjson] [--checkpoints DIR]",
		summary: "verify the log: the saved checkpoint, the log's consistency with it, and every event's leaf and every signed root recomputed (exit 0 verified, 1 not)",
		flags: func(fs *flag.FlagSet) {
			addClientFlags(fs)
			keyFlag(fs)
			fs.String("checkpoint", "", "a checkpoint saved earlier (chronicle log checkpoint --save): what the log must still hold")
			fs.String("events", "", "check the events of this NDJSON export (GET /events/export) offline, instead of fetching them")
			fs.String("checkpoints", "", "offline: a directory of checkpoint files (CHRONICLE_CHECKPOINT_DIR) to check the events against too")
		},
		run: runVerify,
	})
	register(&command{
		name:    "prove",
		args:    "ID",
		summary: "prove that the log holds event ID as stored: its leaf recomputed, its inclusion proof, a signed checkpoint",
		flags: func(fs *flag.FlagSet) {
			addClientFlags(fs)
			keyFlag(fs)
			fs.String("receipt", "", "also save the event's receipt (C2SP tlog-proof) to this file, and the event to FILE.event.json")
		},
		run: runProve,
	})
	register(&command{
		name:    "verify-receipt",
		args:    "--event EVENT.json RECEIPT",
		summary: "check a receipt offline: the event is in a checkpoint signed by the log's key",
		flags: func(fs *flag.FlagSet) {
			keyFlag(fs)
			fs.String("event", "", "the event the receipt is for, as GET /events/{id} or the export gave it")
		},
		run: runVerifyReceipt,
	})
	register(&command{
		name:    "monitor",
		args:    "--state FILE",
		summary: "check that the log only grew since the last run (no fork, rollback or bad signature), then save its latest checkpoint (for cron)",
		flags: func(fs *flag.FlagSet) {
			addClientFlags(fs)
			keyFlag(fs)
			fs.String("state", "", "where the last verified checkpoint is kept (created on the first run)")
		},
		run: runMonitor,
	})
	register(&command{
		name:    "redact",
		args:    "ID --reason TEXT",
		summary: "erase an event's content (its place and leaf hash stay in the log) and record who did it (admin key)",
		flags: func(fs *flag.FlagSet) {
			addClientFlags(fs)
			fs.String("reason", "", "why, recorded with the redaction")
		},
		run: runRedact,
	})
}

// pinnedKey is the verifier of --key or CHRONICLE_LOG_KEY.
func pinnedKey(env *Env, fs *flag.FlagSet) (note.Verifier, error) {
	k := flagValue[string](fs, "key")
	if k == "" {
		k, _ = lookupEnv(env, "CHRONICLE_LOG_KEY")
	}
	if strings.TrimSpace(k) == "" {
		return nil, usagef("give the log's verifier key with --key or CHRONICLE_LOG_KEY (chronicle log key prints what the service says it is: pin it from a source you trust)")
	}
	v, err := integrity.ParseVerifier(k)
	if err != nil {
		return nil, usagef("%v", err)
	}
	return v, nil
}

func runLog(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
	args, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(args) == 0 || (args[0] != "checkpoint" && args[0] != "key") {
		return usagef("want checkpoint or key")
	}
	if len(args) > 1 {
		return usagef("unexpected %q", args[1])
	}
	c, err := clientFromFlags(env, fs, client.Options{})
	if err != nil {
		return err
	}
	defer c.Close()
	if args[0] == "key" {
		k, err := c.LogKey(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, k)
		return nil
	}
	v, err := pinnedKey(env, fs)
	if err != nil {
		return err
	}
	signed, err := c.LatestCheckpoint(ctx)
	if err != nil {
		return err
	}
	cp, err := integrity.OpenCheckpoint(signed, v)
	if err != nil {
		return fmt.Errorf("the latest checkpoint does not verify with the pinned key: %w", err)
	}
	if path := flagValue[string](fs, "save"); path != "" {
		if err := integrity.WriteFile(path, signed); err != nil {
			return err
		}
	}
	if flagValue[bool](fs, "json") {
		return writeJSON(env.Stdout, map[string]any{"origin": cp.Origin, "size": cp.Size, "root": cp.Root[:], "checkpoint": string(signed)})
	}
	fmt.Fprintf(env.Stdout, "%s\nsize %d, root %x\nsignature: valid, by %s\n", cp.Origin, cp.Size, cp.Root, v.Name())
	return nil
}

// readCheckpoint reads and verifies a saved checkpoint.
func readCheckpoint(path string, v note.Verifier) (*integrity.Checkpoint, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("--checkpoint: %v", err)
	}
	cp, err := integrity.OpenCheckpoint(data, v)
	if err != nil {
		return nil, fmt.Errorf("the saved checkpoint %s does not verify with the pinned key: %w", path, err)
	}
	return cp, nil
}

// failed is a check that did not pass: exit code 1, its report printed.
var errNotVerified = errors.New("the log does NOT verify")

func runVerify(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	v, err := pinnedKey(env, fs)
	if err != nil {
		return err
	}
	path := flagValue[string](fs, "checkpoint")
	if path == "" {
		return usagef("--checkpoint is required: a checkpoint saved earlier, which the log must still hold")
	}
	trusted, err := readCheckpoint(path, v)
	if err != nil {
		return err
	}
	out := env.Stdout
	fmt.Fprintf(out, "saved checkpoint: %s, %d events, signature valid\n", trusted.Origin, trusted.Size)
	if file := flagValue[string](fs, "events"); file != "" {
		return verifyOffline(env, fs, v, trusted, file)
	}
	c, err := clientFromFlags(env, fs, client.Options{})
	if err != nil {
		return err
	}
	defer c.Close()

	// The latest checkpoint, and the log's consistency with the saved one.
	signed, err := c.LatestCheckpoint(ctx)
	if err != nil {
		return err
	}
	latest, err := integrity.OpenCheckpoint(signed, v)
	if err != nil {
		fmt.Fprintf(out, "FAIL latest checkpoint: %v\n", err)
		return errNotVerified
	}
	fmt.Fprintf(out, "latest checkpoint: %d events, signature valid\n", latest.Size)
	var problems []integrity.Problem
	rollback := ""
	switch {
	case latest.Size < trusted.Size:
		rollback = fmt.Sprintf("rollback: the log's latest checkpoint holds %d events, fewer than the %d of the saved one", latest.Size, trusted.Size)
	default:
		p, err := c.Consistency(ctx, trusted.Size, latest.Size)
		if err == nil {
			err = integrity.CheckConsistency(hashes(p.Proof), trusted.Size, trusted.Root, latest.Size, latest.Root)
		}
		if err != nil {
			problems = append(problems, integrity.Problem{Seq: trusted.Size, Kind: integrity.Rewritten,
				Detail: fmt.Sprintf("fork: the log's tree of %d events is not the one the saved checkpoint signed: %v", trusted.Size, err)})
		} else {
			fmt.Fprintf(out, "consistency: the log of %d events extends the saved one of %d\n", latest.Size, trusted.Size)
		}
	}

	// Every checkpoint the service kept, each signature checked.
	cps := []*integrity.Checkpoint{trusted, latest}
	for cp, err := range c.Checkpoints(ctx, 0) {
		if err != nil {
			return err
		}
		opened, err := integrity.OpenCheckpoint([]byte(cp.Checkpoint), v)
		if err != nil {
			problems = append(problems, integrity.Problem{Seq: cp.Size, Kind: integrity.Rewritten,
				Detail: fmt.Sprintf("the stored checkpoint of %d events does not verify (forged?): %v", cp.Size, err)})
			continue
		}
		if opened.Size != cp.Size {
			problems = append(problems, integrity.Problem{Seq: cp.Size, Kind: integrity.Rewritten,
				Detail: fmt.Sprintf("the checkpoint stored for %d events is signed for %d", cp.Size, opened.Size)})
			continue
		}
		cps = append(cps, opened)
	}
	cps = sameSizeRoots(cps, &problems)
	size := max(latest.Size, trusted.Size)

	// The store's leaf hashes, then every event, recomputed.
	a := &integrity.Audit{Checkpoints: cps}
	for h, err := range c.Leaves(ctx, 0, latest.Size) {
		var ce *client.Error
		if errors.As(err, &ce) && errors.Is(ce, chronicle.ErrNotFound) {
			break // the log is shorter than its checkpoint: the audit names what is gone
		}
		if err != nil {
			return err
		}
		if len(h) == len(chronicle.Hash{}) {
			hh := chronicle.Hash(h)
			a.Stored = append(a.Stored, &hh)
		} else {
			a.Stored = append(a.Stored, nil)
		}
	}
	report, err := a.Run(c.LogEvents(ctx, 0, size))
	if err != nil {
		return err
	}
	if rollback != "" {
		// Name where the events stop, which the audit found.
		i := slices.IndexFunc(report.Problems, func(p integrity.Problem) bool { return p.Kind == integrity.Truncated })
		if i >= 0 {
			report.Problems[i].Detail = rollback + "; " + report.Problems[i].Detail
		} else {
			problems = append(problems, integrity.Problem{Seq: latest.Size, Kind: integrity.Truncated, Detail: rollback})
		}
	}
	return finishVerify(out, report, problems, len(cps))
}

// sameSizeRoots keeps one checkpoint per size; two signed checkpoints of
// one size with different roots are a fork.
func sameSizeRoots(cps []*integrity.Checkpoint, problems *[]integrity.Problem) []*integrity.Checkpoint {
	bySize := map[int64]*integrity.Checkpoint{}
	var out []*integrity.Checkpoint
	for _, cp := range cps {
		if have, ok := bySize[cp.Size]; ok {
			if have.Root != cp.Root {
				*problems = append(*problems, integrity.Problem{Seq: cp.Size, Kind: integrity.Rewritten,
					Detail: fmt.Sprintf("fork: two checkpoints of %d events, both signed, with different roots", cp.Size)})
			}
			continue
		}
		bySize[cp.Size] = cp
		out = append(out, cp)
	}
	return out
}

func finishVerify(out io.Writer, report *integrity.Report, problems []integrity.Problem, checkpoints int) error {
	problems = append(problems, report.Problems...)
	slices.SortStableFunc(problems, func(x, y integrity.Problem) int { return int(x.Seq - y.Seq) })
	fmt.Fprintf(out, "events: %d checked, %d redacted (with their records), %d after the latest checkpoint not covered yet\n",
		report.Events, len(report.Redacted), report.Beyond)
	fmt.Fprintf(out, "roots: %d of %d signed checkpoints recomputed from the events\n", report.Roots, checkpoints)
	if report.Unchecked > 0 {
		fmt.Fprintf(out, "roots: %d could not be recomputed: a missing event's logged leaf is gone too\n", report.Unchecked)
	}
	if len(problems) == 0 {
		fmt.Fprintln(out, "OK: the log verifies")
		return nil
	}
	fmt.Fprintf(out, "FAIL: first bad seq %d (%s)\n", problems[0].Seq, problems[0].Kind)
	for _, p := range problems {
		fmt.Fprintf(out, "  %s\n", p)
	}
	return errNotVerified
}

// verifyOffline checks an export file against the saved checkpoint and
// the checkpoint files of a directory: no network.
func verifyOffline(env *Env, fs *flag.FlagSet, v note.Verifier, trusted *integrity.Checkpoint, file string) error {
	cps := []*integrity.Checkpoint{trusted}
	var problems []integrity.Problem
	if dir := flagValue[string](fs, "checkpoints"); dir != "" {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return usagef("--checkpoints: %v", err)
		}
		for _, e := range entries {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".checkpoint") {
				continue
			}
			data, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				return err
			}
			cp, err := integrity.OpenCheckpoint(data, v)
			if err != nil {
				problems = append(problems, integrity.Problem{Kind: integrity.Rewritten, Detail: fmt.Sprintf("%s does not verify: %v", e.Name(), err)})
				continue
			}
			cps = append(cps, cp)
		}
	}
	cps = sameSizeRoots(cps, &problems)
	f, err := os.Open(file)
	if err != nil {
		return usagef("--events: %v", err)
	}
	defer f.Close()
	a := &integrity.Audit{Checkpoints: cps}
	report, err := a.Run(exportFile(f))
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return finishVerify(env.Stdout, report, problems, len(cps))
}

// exportFile reads an NDJSON export: events, then its trailer, which must
// be there.
func exportFile(r io.Reader) iter.Seq2[*chronicle.Event, error] {
	return func(yield func(*chronicle.Event, error) bool) {
		dec := json.NewDecoder(r)
		line := 0
		var n int64
		for {
			var raw json.RawMessage
			err := dec.Decode(&raw)
			if errors.Is(err, io.EOF) {
				yield(nil, errors.New("the export was cut off: it has no trailer line"))
				return
			}
			line++
			if err != nil {
				yield(nil, fmt.Errorf("line %d: %v", line, err))
				return
			}
			var t struct {
				Trailer *struct {
					Count int64 `json:"count"`
				} `json:"trailer"`
			}
			if json.Unmarshal(raw, &t) == nil && t.Trailer != nil {
				if t.Trailer.Count != n {
					yield(nil, fmt.Errorf("line %d: the trailer counts %d events, the export holds %d", line, t.Trailer.Count, n))
				}
				return
			}
			var e chronicle.Event
			if err := json.Unmarshal(raw, &e); err != nil {
				yield(nil, fmt.Errorf("line %d: %v", line, err))
				return
			}
			n++
			if !yield(&e, nil) {
				return
			}
		}
	}
}

func hashes(raw [][]byte) []chronicle.Hash {
	out := make([]chronicle.Hash, len(raw))
	for i, h := range raw {
		copy(out[i][:], h)
	}
	return out
}

func runProve(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
	args, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(args) != 1 {
		return usagef("want one event id")
	}
	v, err := pinnedKey(env, fs)
	if err != nil {
		return err
	}
	c, err := clientFromFlags(env, fs, client.Options{})
	if err != nil {
		return err
	}
	defer c.Close()
	p, err := c.Proof(ctx, args[0], -1)
	if err != nil {
		return err
	}
	cp, err := integrity.OpenCheckpoint([]byte(p.Checkpoint), v)
	if err != nil {
		return fmt.Errorf("the proof's checkpoint does not verify with the pinned key: %w", err)
	}
	// The event as stored, its leaf recomputed: the proof is of what the
	// store holds now, not of what the service says.
	var stored *chronicle.Event
	for e, err := range c.LogEvents(ctx, p.Seq, p.Seq+1) {
		if err != nil {
			return err
		}
		stored = e
	}
	if stored == nil || stored.ID != p.ID {
		return fmt.Errorf("seq %d of the log is not event %s", p.Seq, p.ID)
	}
	leaf := chronicle.Hash(p.LeafHash)
	if stored.Redacted == nil {
		leaf = integrity.LeafHash(stored)
	}
	if err := integrity.CheckInclusion(hashes(p.Proof), cp.Size, cp.Root, p.Seq, leaf); err != nil {
		return fmt.Errorf("event %s is NOT proven to be seq %d of the log's tree of %d events: %v", p.ID, p.Seq, cp.Size, err)
	}
	if path := flagValue[string](fs, "receipt"); path != "" {
		r := integrity.Receipt{Index: p.Seq, Proof: hashes(p.Proof), Checkpoint: []byte(p.Checkpoint)}
		ev, _ := json.Marshal(stored)
		if err := errors.Join(integrity.WriteFile(path, r.Marshal()), integrity.WriteFile(path+".event.json", append(ev, '\n'))); err != nil {
			return err
		}
	}
	if flagValue[bool](fs, "json") {
		return writeJSON(env.Stdout, p)
	}
	what := "its content recomputed"
	if stored.Redacted != nil {
		what = "redacted: its logged leaf"
	}
	fmt.Fprintf(env.Stdout, "event %s is seq %d of the log (%s)\nincluded in the tree of %d events, root %x\ncheckpoint signature: valid, by %s\n",
		p.ID, p.Seq, what, cp.Size, cp.Root, v.Name())
	return nil
}

func runVerifyReceipt(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
	args, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(args) != 1 {
		return usagef("want the receipt file")
	}
	v, err := pinnedKey(env, fs)
	if err != nil {
		return err
	}
	evFile := flagValue[string](fs, "event")
	if evFile == "" {
		return usagef("--event is required: the event the receipt is for")
	}
	data, err := os.ReadFile(args[0])
	if err != nil {
		return usagef("receipt: %v", err)
	}
	r, err := integrity.ParseReceipt(data)
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(evFile)
	if err != nil {
		return usagef("--event: %v", err)
	}
	var e chronicle.Event
	if err := json.Unmarshal(raw, &e); err != nil {
		return fmt.Errorf("--event %s: %v", evFile, err)
	}
	cp, err := r.Verify(&e, v)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "event %s is seq %d of the log %s, in its signed tree of %d events\n", e.ID, r.Index, cp.Origin, cp.Size)
	return nil
}

func runMonitor(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	v, err := pinnedKey(env, fs)
	if err != nil {
		return err
	}
	state := flagValue[string](fs, "state")
	if state == "" {
		return usagef("--state is required: the file that keeps the last verified checkpoint")
	}
	var last *integrity.Checkpoint
	if data, err := os.ReadFile(state); err == nil {
		if last, err = integrity.OpenCheckpoint(data, v); err != nil {
			return fmt.Errorf("the state file %s does not verify with the pinned key: %w", state, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("--state: %w", err)
	}
	c, err := clientFromFlags(env, fs, client.Options{})
	if err != nil {
		return err
	}
	defer c.Close()
	signed, err := c.LatestCheckpoint(ctx)
	var ce *client.Error
	if errors.As(err, &ce) && errors.Is(ce, chronicle.ErrNotFound) && last == nil {
		fmt.Fprintln(env.Stdout, "the log has no checkpoint yet: nothing to check")
		return nil
	}
	if err != nil {
		return err
	}
	latest, err := integrity.OpenCheckpoint(signed, v)
	if err != nil {
		return fmt.Errorf("ALERT: the latest checkpoint does not verify with the pinned key: %w", err)
	}
	if last != nil {
		switch {
		case latest.Size < last.Size:
			return fmt.Errorf("ALERT: rollback: the log's latest checkpoint holds %d events, fewer than the %d of the last one seen", latest.Size, last.Size)
		case latest.Size == last.Size && latest.Root != last.Root:
			return fmt.Errorf("ALERT: fork: two signed checkpoints of %d events with different roots", latest.Size)
		case latest.Size > last.Size:
			p, err := c.Consistency(ctx, last.Size, latest.Size)
			if err != nil {
				return err
			}
			if err := integrity.CheckConsistency(hashes(p.Proof), last.Size, last.Root, latest.Size, latest.Root); err != nil {
				return fmt.Errorf("ALERT: fork: the log of %d events does not extend the one of %d seen last: %v", latest.Size, last.Size, err)
			}
		}
	}
	if err := integrity.WriteFile(state, signed); err != nil {
		return err
	}
	from := int64(0)
	if last != nil {
		from = last.Size
	}
	fmt.Fprintf(env.Stdout, "OK: the log grew from %d to %d events, consistently; checkpoint saved\n", from, latest.Size)
	return nil
}

func runRedact(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
	args, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(args) != 1 {
		return usagef("want one event id")
	}
	c, err := clientFromFlags(env, fs, client.Options{})
	if err != nil {
		return err
	}
	defer c.Close()
	e, err := c.Redact(ctx, args[0], flagValue[string](fs, "reason"))
	if err != nil {
		return err
	}
	if flagValue[bool](fs, "json") {
		return writeJSON(env.Stdout, e)
	}
	fmt.Fprintf(env.Stdout, "event %s redacted by %s; recorded as event %s\n", e.ID, e.Redacted.By, e.Redacted.RecordID)
	return nil
}
