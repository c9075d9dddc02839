"""The only door to the APIs: the keystoneauth1 session and login (session), credentials,
Nova's JSON requests (jsonapi), compute services (computes), Placement and quota (capacity),
Glance (glance) and the image safety check (images)."""
