"""The only door to the APIs: the keystoneauth1 session, login and token hand-off (session),
credentials, the one transport to Nova (jsonapi: http.client, the environment's proxy, the CA
bundle), the Nova facade that alone sends to Nova (nova), compute services over its plain data
(computes), Placement (placement) and the room for a flavor (capacity), Glance (glance) and
the image safety check (images)."""
