package login

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/oauth2"
)

// device runs the device authorization grant (RFC 8628).
func (is *issuer) device(ctx context.Context) (*cacheEntry, error) {
	c := is.cfg
	if is.oauth.Endpoint.DeviceAuthURL == "" {
		return nil, newError(KindClientMisconfigured, nil, "%s does not offer the device grant (its discovery document has no device_authorization_endpoint): use --grant auth-code", c.IssuerURL)
	}
	var opts []oauth2.AuthCodeOption
	if c.ClientSecret != "" { // RFC 8628 section 3.1: confidential clients authenticate here too
		opts = append(opts, oauth2.SetAuthURLParam("client_secret", c.ClientSecret))
	}
	da, err := is.oauth.DeviceAuth(ctx, opts...)
	if err != nil {
		return nil, is.tokenError(ctx, err, "")
	}
	w := c.prompt()
	fmt.Fprintf(w, "frontgate: to log in at %s, open %s on any device and enter the code %s\n", c.IssuerURL, da.VerificationURI, da.UserCode)
	open := da.VerificationURIComplete
	if open != "" {
		fmt.Fprintf(w, "frontgate: or open %s\n", open)
	} else {
		open = da.VerificationURI
	}
	if c.OpenBrowser != nil && open != "" {
		_ = c.OpenBrowser(open) // the printed URL is enough when this fails
	}
	fmt.Fprintln(w, "frontgate: waiting for you to finish there (Ctrl-C to cancel)")
	tok, err := is.oauth.DeviceAccessToken(ctx, da)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return nil, newError(KindTimeout, err, "the code %s expired before the login was completed: run the command again and finish sooner", da.UserCode)
		}
		return nil, is.tokenError(ctx, err, "")
	}
	return is.verified(ctx, tok, "")
}
