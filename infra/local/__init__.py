"""The local cloud: AWS emulated on this machine for `crm dev` (moto and our corrections of it,
the functions run as Lambda runs them, the event sources, the gateway). Nothing that acts on a
deployed stage imports it."""
