package memory_test

import (
	"testing"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/internal/storetest"
	"github.com/chronicle-audit/chronicle/memory"
)

func TestStore(t *testing.T) {
	t.Parallel()
	storetest.Exercise(t, func(t *testing.T) chronicle.Store { return memory.New() })
}
