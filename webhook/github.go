package webhook

// GitHub payloads: https://docs.github.com/en/webhooks/webhook-events-and-payloads
// (push, create, delete). Only the fields modgate reads are declared.

type githubRepo struct {
	FullName string `json:"full_name"`
	HTMLURL  string `json:"html_url"`
	CloneURL string `json:"clone_url"`
	SSHURL   string `json:"ssh_url"`
}

type githubUser struct {
	Login string `json:"login"`
}

type githubPush struct {
	Ref        string `json:"ref"`
	After      string `json:"after"`
	Deleted    bool   `json:"deleted"`
	HeadCommit *struct {
		ID string `json:"id"`
	} `json:"head_commit"`
	Repository *githubRepo `json:"repository"`
	Sender     *githubUser `json:"sender"`
}

// githubRef is the create and delete payload; ref is the short name.
type githubRef struct {
	Ref        string      `json:"ref"`
	RefType    string      `json:"ref_type"`
	Repository *githubRepo `json:"repository"`
	Sender     *githubUser `json:"sender"`
}

func parseGitHub(event string, payload []byte) (*Event, error) {
	const p = GitHub
	var ev *Event
	var repo *githubRepo
	var sender *githubUser
	switch event {
	case "push":
		var pl githubPush
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
		var pl githubRef
		if err := decode(p, event, payload, &pl); err != nil {
			return nil, err
		}
		if pl.RefType != "tag" {
			return nil, ignoredf(p, "%s of a %s, not a tag", event, quote(pl.RefType))
		}
		ev = &Event{Kind: KindTagCreate, Tag: shortTag(pl.Ref)}
		if event == "delete" {
			ev.Kind = KindTagDelete
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
	if sender != nil {
		ev.Sender = sender.Login
	}
	return ev, nil
}
