package postgres

// EventsQuery exposes the listing query of a filter, so tests can EXPLAIN
// exactly what Events runs.
var EventsQuery = eventsQuery
