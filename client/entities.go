package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/chronicle-audit/chronicle"
)

// PutEntity registers e, replacing any entity with its key. Events that
// name the key in entity_key are enriched with e when they are read.
func (c *Client) PutEntity(ctx context.Context, e chronicle.Entity) error {
	body, err := jsonBody(e)
	if err != nil {
		return err
	}
	_, err = c.send(ctx, call{method: http.MethodPost, path: "/entities", body: body, idempotent: true})
	return err
}

// Entity returns the entity with key. An unknown key is an *Error
// wrapping chronicle.ErrNotFound.
func (c *Client) Entity(ctx context.Context, key string) (*chronicle.Entity, error) {
	var e chronicle.Entity
	if _, err := c.send(ctx, call{method: http.MethodGet, path: "/entities/" + url.PathEscape(key), idempotent: true, decode: into(&e)}); err != nil {
		return nil, err
	}
	return &e, nil
}

// Entities returns every registered entity, ordered by key.
func (c *Client) Entities(ctx context.Context) ([]*chronicle.Entity, error) {
	var list []*chronicle.Entity
	_, err := c.send(ctx, call{method: http.MethodGet, path: "/entities", idempotent: true, decode: into(&list)})
	return list, err
}

// DeleteEntity removes the entity with key. An unknown key is an *Error
// wrapping chronicle.ErrNotFound; so is a retry whose first attempt
// deleted the entity but lost the answer.
func (c *Client) DeleteEntity(ctx context.Context, key string) error {
	_, err := c.send(ctx, call{method: http.MethodDelete, path: "/entities/" + url.PathEscape(key), idempotent: true})
	return err
}
