object 8724a9623cfec2cddc761f745591c021e8e06bcc
type commit
tag v1.0.0
tagger Rel Eng <releng@example.com> 1748779200 +0000

release v1.0.0
-----BEGIN PGP SIGNATURE-----

iIkEABYIADEWIQTac+yjwQfabzUwQsnF91U2Ap9BVQUCaDxAwBMccmVsZW5nQGV4
YW1wbGUuY29tAAoJEMX3VTYCn0FVmEoA/2Bv2ju50q6zAzfgZYI2KvOy7epBhs1X
mBKOVEAKw5zQAQDAC8s2oCafAp0N9vEPMpB/Y9yaem9mn1JltFOjmI3BBw==
=F8dF
-----END PGP SIGNATURE-----
