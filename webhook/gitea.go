package webhook

// Gitea payloads: modules/structs/hook.go in code.gitea.io/gitea (PushPayload,
// CreatePayload, DeletePayload). Only the fields modgate reads are declared.

type giteaRepo struct {
	FullName string `json:"full_name"`
	HTMLURL  string `json:"html_url"`
	CloneURL string `json:"clone_url"`
	SSHURL   string `json:"ssh_url"`
}

type giteaUser struct {
	Login    string `json:"login"`
	UserName string `json:"username"`
}

func (u *giteaUser) name() string {
	if u == nil {
		return ""
	}
	if u.Login != "" {
		return u.Login
	}
	return u.UserName
}

type giteaPush struct {
	Ref        string `json:"ref"`
	After      string `json:"after"`
	HeadCommit *struct {
		ID string `json:"id"`
	} `json:"head_commit"`
	Repository *giteaRepo `json:"repository"`
	Sender     *giteaUser `json:"sender"`
}

// giteaRef is the create and delete payload; ref is the short name, and
// create carries the ref's new value as sha.
type giteaRef struct {
	Sha        string     `json:"sha"`
	Ref        string     `json:"ref"`
	RefType    string     `json:"ref_type"`
	Repository *giteaRepo `json:"repository"`
	Sender     *giteaUser `json:"sender"`
}

func parseGitea(event string, payload []byte) (*Event, error) {
	const p = Gitea
	var ev *Event
	var repo *giteaRepo
	var sender *giteaUser
	switch event {
	case "push":
		var pl giteaPush
		if err := decode(p, event, payload, &pl); err != nil {
			return nil, err
		}
		tag, ok := refTag(pl.Ref)
		if !ok {
			return nil, ignoredf(p, "push to %s is not a tag push", quote(pl.Ref))
		}
		ev = &Event{Kind: pushKind(false, pl.After), Tag: tag}
		if ev.Kind == KindTagPush {
			ev.Object = pl.After
			if pl.HeadCommit != nil {
				ev.Commit = pl.HeadCommit.ID
			}
		}
		repo, sender = pl.Repository, pl.Sender
	case "create", "delete":
		var pl giteaRef
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
