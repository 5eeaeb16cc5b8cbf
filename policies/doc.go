// Package policies is modgate's policy engine: the stage that decides, after
// every check has proven what a module version is, whether it may be
// published.
//
// Policies are YAML files that a platform team writes and reviews like code.
// Each file names the module paths it covers (GOPRIVATE patterns) and lists
// rules; a rule is a CEL expression over a typed Input that is true when the
// rule is satisfied, a message, and an action (deny or warn):
//
//	description: Release tags are signed by the release team.
//	modules: [corp.example]
//	rules:
//	  - name: release-team
//	    expr: input.tag.signer_group == "release-team"
//	    message: "{{input.module.path}}@{{input.module.version}} is signed by {{input.tag.principal}}, not the release team"
//
// Load reads and compiles a directory of policy files once: syntax, unknown
// fields, misspelled input fields, wrong types and too-expensive expressions
// are errors naming file, line and column. Set.Evaluate then decides on one
// Input (in about a millisecond for 50 rules over 30 dependencies) and
// returns a Decision listing every rule that applied. The engine denies by default: a module no file covers is denied,
// and a rule that cannot be evaluated (a runtime error, the cost limit)
// denies whatever its action. RunTests runs recorded inputs with expected
// outcomes against a set, for the CI of a policy repository.
//
// REFERENCE.md documents the file format, the input, the helper functions
// and the test-case format for policy authors; examples/ holds example
// policies, one concern each.
package policies
