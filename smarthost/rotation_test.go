package smarthost

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relayq/relayq/authinfo"
	"github.com/relayq/relayq/internal/testlib"
)

// A token endpoint that rotates refresh tokens (each works once): the
// rotated token is kept in the store, so that a restart (a new cache, the
// credentials file unchanged) goes on with it instead of the used-up one
// from the file; a second process that used a token the first had already
// rotated picks the newest one up from the store and retries once.
func TestRotatedRefreshTokenPersisted(t *testing.T) {
	as := testlib.NewOAuthServer(t)
	as.AddRefresh("rt-file")
	store := authinfo.NewRotatedTokens(filepath.Join(t.TempDir(), "oauth-tokens.json"))
	cr := Credential{Key: "[smtp.example.com]:587", User: "me@example.com", OAuth: &OAuth{TokenURL: as.URL + "/token",
		ClientID: as.ClientID, ClientSecret: authinfo.Secret(as.ClientSecret), RefreshToken: "rt-file"}}
	cache := func() *tokenCache {
		return newTokenCache(http.DefaultClient, newSecretSet(), store, slog.New(slog.DiscardHandler))
	}
	first := cache()
	if _, err := first.token(context.Background(), cr, false); err != nil {
		t.Fatal(err)
	}
	id := authinfo.TokenID(cr.Key, cr.User, cr.OAuth.ClientID, cr.OAuth.TokenURL, cr.OAuth.RefreshToken)
	if rt, ok := store.Newest(id); !ok || rt != as.Issued[0] {
		t.Fatalf("store has %q %v, want the rotated %q", rt, ok, as.Issued[0])
	}

	// "Restart": the file still says rt-file, which the server no longer takes.
	a, b := cache(), cache()
	if _, err := a.token(context.Background(), cr, false); err != nil {
		t.Fatalf("after a restart: %v (the rotated token was not used)", err)
	}
	b.entry(cr).refresh = as.Issued[0] // b read the store before a rotated it again
	if _, err := b.token(context.Background(), cr, true); err != nil {
		t.Fatalf("a second process with a used-up token: %v", err)
	}
	if rt, _ := store.Newest(id); rt != as.Issued[len(as.Issued)-1] {
		t.Errorf("store has %q, want the newest %q", rt, as.Issued[len(as.Issued)-1])
	}

	// Without a store, a restart fails: what the store is for.
	plain := newTokenCache(http.DefaultClient, newSecretSet(), nil, slog.New(slog.DiscardHandler))
	if _, err := plain.token(context.Background(), cr, false); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("a cache without the store: %v, want invalid_grant", err)
	} else if strings.Contains(err.Error(), as.ClientSecret) || strings.Contains(err.Error(), "rt-file") {
		t.Errorf("the refusal shows a secret: %v", err)
	}
}

// failingStore is a TokenStore whose Save fails while full is set (a full
// disk), then works.
type failingStore struct {
	*authinfo.RotatedTokens
	full  bool
	saves int
}

func (f *failingStore) Save(id, token string) error {
	f.saves++
	if f.full {
		return errors.New("write oauth-tokens.json: no space left on device")
	}
	return f.RotatedTokens.Save(id, token)
}

// A rotated refresh token that could not be kept (the store's disk full)
// is kept by a later use of the credential once the disk has room, before
// any restart needs it; the access token is served from the cache all the
// while (no extra refresh, which would rotate again).
func TestRotatedTokenSavedAfterFailure(t *testing.T) {
	as := testlib.NewOAuthServer(t)
	as.AddRefresh("rt-file")
	store := &failingStore{RotatedTokens: authinfo.NewRotatedTokens(filepath.Join(t.TempDir(), "oauth-tokens.json")), full: true}
	cr := Credential{Key: "[smtp.example.com]:587", User: "me@example.com", OAuth: &OAuth{TokenURL: as.URL + "/token",
		ClientID: as.ClientID, ClientSecret: authinfo.Secret(as.ClientSecret), RefreshToken: "rt-file"}}
	var logged bytes.Buffer
	tc := newTokenCache(http.DefaultClient, newSecretSet(), store, slog.New(slog.NewTextHandler(&logged, nil)))
	id := authinfo.TokenID(cr.Key, cr.User, cr.OAuth.ClientID, cr.OAuth.TokenURL, cr.OAuth.RefreshToken)

	if _, err := tc.token(context.Background(), cr, false); err != nil {
		t.Fatal(err)
	}
	if _, ok := store.Newest(id); ok {
		t.Fatal("the store holds a token although Save failed")
	}
	if !strings.Contains(logged.String(), "could not be kept") {
		t.Errorf("the failure is not logged: %s", logged.String())
	}
	if _, err := tc.token(context.Background(), cr, false); err != nil {
		t.Fatal(err)
	}
	if store.saves != 2 {
		t.Errorf("%d tries to save, want 2 (at rotation, at the next use)", store.saves)
	}

	store.full = false
	if _, err := tc.token(context.Background(), cr, false); err != nil {
		t.Fatal(err)
	}
	if rt, ok := store.Newest(id); !ok || rt != as.Issued[0] {
		t.Fatalf("store has %q %v after the disk has room, want the rotated %q", rt, ok, as.Issued[0])
	}
	if len(as.Issued) != 1 {
		t.Errorf("%d refresh tokens issued, want 1 (the access token came from the cache)", len(as.Issued))
	}
	if !strings.Contains(logged.String(), "is kept now") {
		t.Errorf("the late save is not logged: %s", logged.String())
	}
	if _, err := tc.token(context.Background(), cr, false); err != nil {
		t.Fatal(err)
	}
	if store.saves != 3 {
		t.Errorf("%d tries to save, want 3 (none once kept)", store.saves)
	}
	for _, secret := range []string{as.ClientSecret, as.Issued[0], "rt-file"} {
		if strings.Contains(logged.String(), secret) {
			t.Errorf("the log shows a secret")
		}
	}
}
