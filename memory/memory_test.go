package memory_test

import (
	"testing"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/internal/journaltest"
	"github.com/chronicle-audit/chronicle/internal/storetest"
	"github.com/chronicle-audit/chronicle/memory"
)

func TestStore(t *testing.T) {
	t.Parallel()
	storetest.Exercise(t, func(t *testing.T) chronicle.Store { return memory.New() })
}

func TestJournal(t *testing.T) {
	t.Parallel()
	journaltest.Run(t, func(t *testing.T) (chronicle.Store, func() chronicle.Store) {
		s := memory.New()
		return s, func() chronicle.Store { return s } // memory cannot outlive itself
	})
}
