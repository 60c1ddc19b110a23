// Every page of the dashboard: its path pattern, its component, and who may
// see it. The navigation and the router both read this list.
import type { Component } from 'svelte';
import Login from './routes/Login.svelte';
import Catalog from './routes/Catalog.svelte';
import CatalogEntry from './routes/CatalogEntry.svelte';
import Apps from './routes/Apps.svelte';
import AppPage from './routes/AppPage.svelte';
import Account from './routes/Account.svelte';
import Nodes from './routes/admin/Nodes.svelte';
import Users from './routes/admin/Users.svelte';
import UserPage from './routes/admin/UserPage.svelte';
import Settings from './routes/admin/Settings.svelte';
import Cluster from './routes/admin/Cluster.svelte';
import Audit from './routes/admin/Audit.svelte';
import Reservations from './routes/admin/Reservations.svelte';

export type Access = 'public' | 'user' | 'admin';

export interface Route {
  pattern: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  component: Component<any>;
  access: Access;
}

export const routes: Route[] = [
  { pattern: '/login', component: Login, access: 'public' },
  { pattern: '/catalog', component: Catalog, access: 'user' },
  { pattern: '/catalog/:id', component: CatalogEntry, access: 'user' },
  { pattern: '/catalog/:source/:id', component: CatalogEntry, access: 'user' },
  { pattern: '/apps', component: Apps, access: 'user' },
  { pattern: '/apps/:id', component: AppPage, access: 'user' },
  { pattern: '/apps/:id/:tab', component: AppPage, access: 'user' },
  { pattern: '/account', component: Account, access: 'user' },
  { pattern: '/admin/nodes', component: Nodes, access: 'admin' },
  { pattern: '/admin/users', component: Users, access: 'admin' },
  { pattern: '/admin/users/:id', component: UserPage, access: 'admin' },
  { pattern: '/admin/settings', component: Settings, access: 'admin' },
  { pattern: '/admin/settings/:section', component: Settings, access: 'admin' },
  { pattern: '/admin/cluster', component: Cluster, access: 'admin' },
  { pattern: '/admin/audit', component: Audit, access: 'admin' },
  { pattern: '/admin/reservations', component: Reservations, access: 'admin' },
];

/** The navigation: names are contracts (tests and people look for them). */
export const nav = [
  { href: '/catalog', label: 'Catalog', admin: false },
  { href: '/apps', label: 'Apps', admin: false },
  { href: '/admin/nodes', label: 'Nodes', admin: true },
  { href: '/admin/users', label: 'Users', admin: true },
  { href: '/admin/settings', label: 'Settings', admin: true },
  { href: '/admin/cluster', label: 'Cluster', admin: true },
  { href: '/admin/audit', label: 'Audit', admin: true },
];
