package chronicle

import "maps"

// Entity is an entry of the entity registry. Events that name it in
// entity_key are enriched with its name and attributes when they are read.
type Entity struct {
	Key        string            `json:"key"`
	Name       string            `json:"name"`
	Attributes map[string]string `json:"attributes"`
}

// Enrich returns a copy of e whose metadata also carries the entity's name
// (as entity_name) and attributes. The event's own metadata wins on a clash.
// e itself is not changed.
func Enrich(e *Event, ent *Entity) *Event {
	out := e.Clone()
	md := make(map[string]string, len(ent.Attributes)+len(e.Metadata)+1)
	maps.Copy(md, ent.Attributes)
	md["entity_name"] = ent.Name
	maps.Copy(md, e.Metadata)
	out.Metadata = md
	return out
}
