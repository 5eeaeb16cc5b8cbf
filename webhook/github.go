package webhook

// GitHub payloads: https://docs.github.com/en/webhooks/webhook-events-and-payloads
// (push, create, delete). Gitea sends the same shapes for the same events
// (modules/structs/hook.go in code.gitea.io/gitea: PushPayload,
// CreatePayload, DeletePayload), with a few fields of its own, so one
// parser reads both. Only the fields modgate reads are declared.

type hubRepo struct {
	FullName string `json:"full_name"`
	HTMLURL  string `json:"html_url"`
	CloneURL string `json:"clone_url"`
	SSHURL   string `json:"ssh_url"`
}

type hubUser struct {
	Login    string `json:"login"`
	UserName string `json:"username"` // Gitea
}

func (u *hubUser) name() string {
	if u == nil {
		return ""
	}
	if u.Login != "" {
		return u.Login
	}
	return u.UserName
}

type hubPush struct {
	Ref        string `json:"ref"`
	After      string `json:"after"`
	Deleted    bool   `json:"deleted"` // GitHub; Gitea says so with an all-zero after
	HeadCommit *struct {
		ID string `json:"id"`
	} `json:"head_commit"`
	Repository *hubRepo `json:"repository"`
	Sender     *hubUser `json:"sender"`
}

// hubRef is the create and delete payload; ref is the short name. Gitea's
// create carries the ref's new value as sha.
type hubRef struct {
	Sha        string   `json:"sha"`
	Ref        string   `json:"ref"`
	RefType    string   `json:"ref_type"`
	Repository *hubRepo `json:"repository"`
	Sender     *hubUser `json:"sender"`
}

func parseGitHub(event string, payload []byte) (*Event, error) {
	return parseHub(GitHub, event, payload)
}
func parseGitea(event string, payload []byte) (*Event, error) { return parseHub(Gitea, event, payload) }

// parseHub reads a GitHub or Gitea payload.
func parseHub(p Provider, event string, payload []byte) (*Event, error) {
	var ev *Event
	var repo *hubRepo
	var sender *hubUser
	switch event {
	case "push":
		var pl hubPush
		if err := decode(p, event, payload, &pl); err != nil {
			return nil, err
		}
		tag, ok := refTag(pl.Ref)
		if !ok {
			return nil, ignoredf(p, "push to %s is not a tag push", quote(pl.Ref))
		}
		ev = &Event{Kind: pushKind(pl.Deleted, pl.After), Tag: tag}
		if ev.Kind == KindTagPush {
			ev.Object = pl.After
			if pl.HeadCommit != nil {
				ev.Commit = pl.HeadCommit.ID
			}
		}
		repo, sender = pl.Repository, pl.Sender
	case "create", "delete":
		var pl hubRef
		if err := decode(p, event, payload, &pl); err != nil {
			return nil, err
		}
		if pl.RefType != "tag" {
			return nil, ignoredf(p, "%s of a %s, not a tag", event, quote(pl.RefType))
		}
		ev = &Event{Kind: KindTagCreate, Tag: shortTag(pl.Ref), Object: pl.Sha}
		if event == "delete" {
			ev.Kind, ev.Object = KindTagDelete, ""
		}
		repo, sender = pl.Repository, pl.Sender
	case "ping":
		return nil, ignoredf(p, "ping: the webhook is configured")
	default:
		return nil, ignoredf(p, "event %s is not a tag event", quote(event))
	}
	if repo == nil {
		return nil, invalidf(p, "%s payload has no repository", event)
	}
	ev.RepoName = repo.FullName
	ev.RepoURLs = repoURLs([]string{repo.CloneURL, repo.SSHURL}, repo.HTMLURL)
	ev.Sender = sender.name()
	return ev, nil
}
