package outbound

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/routing"
)

// encoder writes one event in a sink's format, as one JSON object.
type encoder func(e *chronicle.Event) ([]byte, error)

// encoderFor returns the encoder of format. source names this Chronicle
// (its log's origin) where a format asks who produced the event.
func encoderFor(format, source string) (encoder, error) {
	switch format {
	case routing.FormatChronicle:
		return func(e *chronicle.Event) ([]byte, error) { return json.Marshal(e) }, nil
	case routing.FormatCloudEvents:
		return func(e *chronicle.Event) ([]byte, error) { return json.Marshal(cloudEvent(e, source)) }, nil
	case routing.FormatOCSF:
		return func(e *chronicle.Event) ([]byte, error) { return json.Marshal(ocsfEvent(e)) }, nil
	}
	return nil, fmt.Errorf("unknown format %q", format)
}

// contentType is the media type of a webhook batch in format.
func contentType(format string) string {
	if format == routing.FormatCloudEvents {
		return "application/cloudevents-batch+json"
	}
	return "application/json"
}

// CloudEvent is an event in the CloudEvents 1.0 structured JSON format.
// The Chronicle event is its data, as the API returns it.
type CloudEvent struct {
	SpecVersion     string           `json:"specversion"`
	ID              string           `json:"id"`
	Source          string           `json:"source"`
	Type            string           `json:"type"`
	Subject         string           `json:"subject,omitempty"`
	Time            string           `json:"time"`
	DataContentType string           `json:"datacontenttype"`
	Data            *chronicle.Event `json:"data"`
	// Sequence is the event's seq (the CloudEvents sequence extension,
	// a string).
	Sequence string `json:"sequence,omitempty"`
	// CorrelationID is the event's correlation_id (an extension
	// attribute; names are lower-case letters and digits).
	CorrelationID string `json:"correlationid,omitempty"`
}

func cloudEvent(e *chronicle.Event, source string) CloudEvent {
	ce := CloudEvent{
		SpecVersion: "1.0", ID: e.ID, Source: source, Type: e.EventType,
		Time: e.Timestamp.UTC().Format(chronicle.TimestampLayout), DataContentType: "application/json",
		Data: e, CorrelationID: e.CorrelationID,
	}
	if ce.Type == "" {
		ce.Type = "chronicle.event"
	}
	if e.ResourceType != "" {
		ce.Subject = e.ResourceType + "/" + e.ResourceID
	}
	if e.Seq != nil {
		ce.Sequence = strconv.FormatInt(*e.Seq, 10)
	}
	return ce
}

// OCSF: API Activity (class 6003, category 6 Application Activity) of
// schema 1.3.0. The mapping is documented in the README.
const (
	OCSFVersion       = "1.3.0"
	ocsfCategory      = 6
	ocsfClass         = 6003
	ocsfInformational = 1
)

// OCSFEvent is an event as an OCSF API Activity.
type OCSFEvent struct {
	ActivityID   int               `json:"activity_id"`
	ActivityName string            `json:"activity_name"`
	CategoryUID  int               `json:"category_uid"`
	CategoryName string            `json:"category_name"`
	ClassUID     int               `json:"class_uid"`
	ClassName    string            `json:"class_name"`
	TypeUID      int               `json:"type_uid"`
	TypeName     string            `json:"type_name"`
	SeverityID   int               `json:"severity_id"`
	Severity     string            `json:"severity"`
	Time         int64             `json:"time"`
	Message      string            `json:"message,omitempty"`
	Metadata     ocsfMetadata      `json:"metadata"`
	Actor        ocsfActor         `json:"actor"`
	API          ocsfAPI           `json:"api"`
	SrcEndpoint  map[string]string `json:"src_endpoint"`
	Resources    []ocsfResource    `json:"resources,omitempty"`
	Unmapped     map[string]any    `json:"unmapped,omitempty"`
}

type ocsfMetadata struct {
	Version        string      `json:"version"`
	Product        ocsfProduct `json:"product"`
	UID            string      `json:"uid"`
	CorrelationUID string      `json:"correlation_uid,omitempty"`
	EventCode      string      `json:"event_code,omitempty"`
	LoggedTime     int64       `json:"logged_time"`
	OriginalTime   string      `json:"original_time,omitempty"`
}

type ocsfProduct struct {
	Name       string `json:"name"`
	VendorName string `json:"vendor_name"`
}

type ocsfActor struct {
	User ocsfUser `json:"user"`
}

type ocsfUser struct {
	Name string `json:"name"`
}

type ocsfAPI struct {
	Operation string            `json:"operation"`
	Service   map[string]string `json:"service,omitempty"`
}

type ocsfResource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// ocsfActivities maps an action's first word to an API Activity.
var ocsfActivities = map[string]int{
	"create": 1, "created": 1, "add": 1, "added": 1, "insert": 1, "register": 1, "signup": 1, "invite": 1,
	"read": 2, "get": 2, "view": 2, "viewed": 2, "list": 2, "export": 2, "download": 2, "search": 2,
	"update": 3, "updated": 3, "modify": 3, "edit": 3, "change": 3, "changed": 3, "set": 3, "rename": 3, "grant": 3, "revoke": 3,
	"delete": 4, "deleted": 4, "remove": 4, "removed": 4, "destroy": 4, "purge": 4,
}

var ocsfActivityNames = map[int]string{1: "Create", 2: "Read", 3: "Update", 4: "Delete", 99: "Other"}

func ocsfActivity(action string) int {
	word := strings.ToLower(action)
	if i := strings.IndexAny(word, "._- "); i > 0 {
		word = word[:i]
	}
	if id, ok := ocsfActivities[word]; ok {
		return id
	}
	return 99
}

func ocsfEvent(e *chronicle.Event) OCSFEvent {
	activity := ocsfActivity(e.Action)
	happened := e.Timestamp
	if !e.OccurredAt.IsZero() {
		happened = e.OccurredAt
	}
	actor := e.Actor
	if actor == "" {
		actor = "unknown" // a redacted event's actor is erased
	}
	o := OCSFEvent{
		ActivityID: activity, ActivityName: ocsfActivityNames[activity],
		CategoryUID: ocsfCategory, CategoryName: "Application Activity",
		ClassUID: ocsfClass, ClassName: "API Activity",
		TypeUID: ocsfClass*100 + activity, TypeName: "API Activity: " + ocsfActivityNames[activity],
		SeverityID: ocsfInformational, Severity: "Informational",
		Time: happened.UnixMilli(),
		Metadata: ocsfMetadata{
			Version: OCSFVersion, Product: ocsfProduct{Name: "Chronicle", VendorName: "Chronicle"},
			UID: e.ID, CorrelationUID: e.CorrelationID, EventCode: e.EventType,
			LoggedTime: e.Timestamp.UnixMilli(),
		},
		Actor:       ocsfActor{User: ocsfUser{Name: actor}},
		API:         ocsfAPI{Operation: e.Action},
		SrcEndpoint: sourceEndpoint(e.Metadata),
		Unmapped:    map[string]any{},
	}
	if e.Action == "" {
		o.API.Operation = "unknown"
	}
	if e.ResourceType != "" {
		o.API.Service = map[string]string{"name": e.ResourceType}
		o.Resources = []ocsfResource{{Type: e.ResourceType, UID: e.ResourceID}}
		o.Message = e.Actor + " " + e.Action + " " + e.ResourceType + "/" + e.ResourceID
	}
	if !e.OccurredAt.IsZero() {
		o.Metadata.OriginalTime = e.OccurredAt.UTC().Format(chronicle.TimestampLayout)
	}
	if e.Seq != nil {
		o.Unmapped["seq"] = *e.Seq
	}
	if e.EntityKey != "" {
		o.Unmapped["entity_key"] = e.EntityKey
	}
	if len(e.Metadata) > 0 {
		o.Unmapped["metadata"] = e.Metadata
	}
	if e.Redacted != nil {
		o.Unmapped["redacted"] = e.Redacted
	}
	return o
}

// sourceEndpoint is the OCSF src_endpoint: the IP address an event's
// metadata names ("ip", "source_ip" or "client_ip"), else "unknown" (the
// class requires the object; Chronicle does not know the user's address).
func sourceEndpoint(md map[string]string) map[string]string {
	for _, k := range []string{"ip", "source_ip", "client_ip"} {
		if a, err := netip.ParseAddr(md[k]); err == nil {
			return map[string]string{"ip": a.String()}
		}
	}
	return map[string]string{"name": "unknown"}
}
