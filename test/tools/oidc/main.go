// Command oidc-provider-device is zitadel's example OpenID Provider
// (github.com/zitadel/oidc/v3/example/server, whose main this follows) with
// one extra client registration: "device", secret "secret", which may use
// the device authorization grant (RFC 8628). The stock example registers no
// such client. Same environment: PORT, REDIRECT_URI, USERS_FILE (required).
package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/zitadel/oidc/v3/example/server/config"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
)

func main() {
	cfg := config.FromEnvVars(&config.Config{Port: "9998"})
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	storage.RegisterClients(
		storage.NativeClient("native", cfg.RedirectURI...),
		storage.WebClient("web", "secret", cfg.RedirectURI...),
		storage.WebClient("api", "secret", cfg.RedirectURI...),
		storage.DeviceClient("device", "secret"),
	)
	users, err := storage.StoreFromFile(cfg.UsersFile)
	if err != nil {
		logger.Error("cannot read USERS_FILE", "error", err)
		os.Exit(1)
	}
	issuer := fmt.Sprintf("http://localhost:%s/", cfg.Port)
	router := exampleop.SetupServer(issuer, storage.NewStorage(users), logger, false)
	logger.Info("server listening", "addr", issuer)
	err = http.ListenAndServe("127.0.0.1:"+cfg.Port, router) // loopback only
	logger.Error("server terminated", "error", err)
	os.Exit(1)
}
