package clientcert

// Reload loads files and applies them with [Authenticator.Update], keeping
// the trusted proxies and the clock; on any error the current configuration
// stays. It suits a reload on SIGHUP; [Authenticator.Watch] calls it when the
// files change.
func (a *Authenticator) Reload(files Files) error {
	cfg, err := files.Load()
	if err != nil {
		return err
	}
	cur := a.state.Load()
	cfg.TrustedProxies = cur.trusted
	cfg.Now = cur.now
	return a.Update(cfg)
}
