package service

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/integrity"
)

// signCheckpoints signs the log's checkpoints in the background until the
// service stops, with the key in CHRONICLE_SIGNING_KEY_FILE.
//
// Without that file, the process that starts the log generates the key
// and writes it there. A process that finds the log started, with a key it
// does not have, does not sign: it serves and proves, and a process that
// holds the key signs. A key file that is not the log's key stops the
// start (unless CHRONICLE_SIGNING_KEY_ROTATE says it is its new one).
func (s *Service) signCheckpoints(ctx context.Context) error {
	c := s.cfg
	key, err := integrity.LoadKey(c.SigningKeyFile, c.LogOrigin)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if key, err = s.newLogKey(ctx); key == nil || err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("CHRONICLE_SIGNING_KEY_FILE: %w", err)
	}
	s.logKey = key
	cp := &integrity.Checkpointer{Log: s.store, Key: key, Interval: c.CheckpointInterval, Dir: c.CheckpointDir,
		Rotate: c.RotateSigningKey, Logger: s.logger}
	done, err := cp.Start(ctx)
	if err != nil {
		return err
	}
	s.logger.Info("signing the log's checkpoints", "origin", key.Name(), "verifier_key", key.Verifier, "interval", c.CheckpointInterval)
	s.chores.Go(func() { <-done })
	return nil
}

// newLogKey generates the log's key when the log has none, records it and
// writes its file. It returns no key when the log has one already.
func (s *Service) newLogKey(ctx context.Context) (*integrity.Key, error) {
	c := s.cfg
	key, err := integrity.NewKey(c.LogOrigin)
	if err != nil {
		return nil, err
	}
	have, err := s.store.TrustKey(ctx, key.Verifier, false)
	if err != nil && !errors.Is(err, chronicle.ErrUnavailable) {
		return nil, err
	}
	if err == nil && have != key.Verifier {
		s.logKeyVerifier = have
		s.logger.Warn("this process does not sign the log's checkpoints: the log's key is not in CHRONICLE_SIGNING_KEY_FILE (copy it there from the process that has it)",
			"file", c.SigningKeyFile, "verifier_key", have)
		return nil, nil
	}
	// The log is new (or the store cannot be asked yet: the checkpointer
	// asks again before signing).
	if err := key.Save(c.SigningKeyFile); err != nil {
		return nil, fmt.Errorf("CHRONICLE_SIGNING_KEY_FILE: %w", err)
	}
	s.logger.Warn("generated the key that signs the log's checkpoints: keep it safe, and give verifiers its public key",
		"file", c.SigningKeyFile, "verifier_key", key.Verifier)
	return key, nil
}
