object 8724a9623cfec2cddc761f745591c021e8e06bcc
type commit
tag v2.0.0
tagger Rel Eng <releng@example.com> 1748779200 +0000

release v2.0.0

Second paragraph of the release notes.
-----BEGIN SSH SIGNATURE-----
U1NIU0lHAAAAAQAAADMAAAALc3NoLWVkMjU1MTkAAAAgzoN7jaDUtblXcwRNN5aozI4Tzw
y3A8uqbg4Rxl7DTzkAAAADZ2l0AAAAAAAAAAZzaGE1MTIAAABTAAAAC3NzaC1lZDI1NTE5
AAAAQA+v2LEGsz21E7G2qyywerxZ/yTarbnkjaiqXqSozTY8SrTPPsGY81O4zsPN7hbZ4I
kcZMgZQs4X8VnKOnECEAU=
-----END SSH SIGNATURE-----
