package webhook

// GitLab payloads: https://docs.gitlab.com/user/project/integrations/webhook_events/#tag-events
// Only the fields modgate reads are declared.

type gitlabProject struct {
	PathWithNamespace string `json:"path_with_namespace"`
	WebURL            string `json:"web_url"`
	GitHTTPURL        string `json:"git_http_url"`
	GitSSHURL         string `json:"git_ssh_url"`
}

type gitlabTagPush struct {
	ObjectKind   string         `json:"object_kind"`
	Ref          string         `json:"ref"`
	After        string         `json:"after"`
	CheckoutSHA  string         `json:"checkout_sha"` // null for a deletion
	UserUsername string         `json:"user_username"`
	UserName     string         `json:"user_name"`
	Project      *gitlabProject `json:"project"`
}

func parseGitLab(event string, payload []byte) (*Event, error) {
	const p = GitLab
	switch event {
	case "Tag Push Hook", "System Hook":
	case "Push Hook":
		return nil, ignoredf(p, "branch push")
	default:
		return nil, ignoredf(p, "event %s is not a tag event", quote(event))
	}
	var pl gitlabTagPush
	if err := decode(p, event, payload, &pl); err != nil {
		return nil, err
	}
	if pl.ObjectKind != "tag_push" {
		if event == "System Hook" {
			return nil, ignoredf(p, "system hook of kind %s is not a tag event", quote(pl.ObjectKind))
		}
		return nil, invalidf(p, "%s delivery with object_kind %s", event, quote(pl.ObjectKind))
	}
	tag, ok := refTag(pl.Ref)
	if !ok {
		return nil, invalidf(p, "tag push of ref %s outside refs/tags/", quote(pl.Ref))
	}
	ev := &Event{Kind: pushKind(false, pl.After), Tag: tag}
	if ev.Kind == KindTagPush {
		ev.Object, ev.Commit = pl.After, pl.CheckoutSHA
	}
	if pl.Project == nil {
		return nil, invalidf(p, "tag push payload has no project")
	}
	ev.RepoName = pl.Project.PathWithNamespace
	ev.RepoURLs = repoURLs([]string{pl.Project.GitHTTPURL, pl.Project.GitSSHURL}, pl.Project.WebURL)
	ev.Sender = pl.UserUsername
	if ev.Sender == "" {
		ev.Sender = pl.UserName
	}
	return ev, nil
}
