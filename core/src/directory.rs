//! The user and group directory: catalog import, membership and recipient resolution.

use std::collections::{BTreeMap, BTreeSet};

use herald_model::{EntityKind, EntityRef};
use serde::{Deserialize, Serialize};

use crate::db::{Db, Tx};
use crate::time::now_ms;
use crate::{Error, Result, with_pool, with_tx};

/// A user as the directory knows them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct User {
    #[sqlx(rename = "ref")]
    pub user_ref: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    /// Catalog annotations as a JSON object (e.g. `slack.com/user-id`).
    pub annotations: String,
    /// Whether the user can sign in with a password.
    pub has_password: bool,
}

/// A group and its direct relations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub group_ref: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub annotations: String,
    pub members: Vec<String>,
    pub children: Vec<String>,
}

/// What an import changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportSummary {
    pub users: usize,
    pub groups: usize,
    /// Documents of other kinds (components, systems…), passed over.
    pub skipped: usize,
}

/// Creates a user or updates their profile. Fields given as `None` are left unchanged.
pub async fn upsert_user(db: &Db, user: &EntityRef, display_name: Option<&str>, email: Option<&str>) -> Result<()> {
    kind_must_be(user, EntityKind::User)?;
    with_pool!(db.writer(), |c| sqlx::query(
        "INSERT INTO users (ref, display_name, email, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (ref) DO UPDATE SET
             display_name = COALESCE(excluded.display_name, users.display_name),
             email = COALESCE(excluded.email, users.email)"
    )
    .bind(user.as_str())
    .bind(display_name)
    .bind(email)
    .bind(now_ms())
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Sets (or replaces) a user's password; the user is created when missing.
pub async fn set_password(db: &Db, user: &EntityRef, password: &str) -> Result<()> {
    kind_must_be(user, EntityKind::User)?;
    let password = password.to_string();
    let hash = tokio::task::spawn_blocking(move || crate::auth::hash_password(&password))
        .await
        .map_err(|e| Error::Internal(format!("password hashing: {e}")))??;
    with_pool!(db.writer(), |c| sqlx::query(
        "INSERT INTO users (ref, password_hash, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (ref) DO UPDATE SET password_hash = excluded.password_hash"
    )
    .bind(user.as_str())
    .bind(&hash)
    .bind(now_ms())
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// One user, if known.
pub async fn get_user(db: &Db, user: &EntityRef) -> Result<Option<User>> {
    Ok(with_pool!(db.reader(), |c| sqlx::query_as::<_, User>(
        "SELECT ref, display_name, email, annotations, password_hash IS NOT NULL AS has_password
         FROM users WHERE ref = $1"
    )
    .bind(user.as_str())
    .fetch_optional(c)
    .await)?)
}

/// Every user, by ref.
pub async fn list_users(db: &Db) -> Result<Vec<User>> {
    Ok(with_pool!(db.reader(), |c| sqlx::query_as::<_, User>(
        "SELECT ref, display_name, email, annotations, password_hash IS NOT NULL AS has_password
         FROM users ORDER BY ref"
    )
    .fetch_all(c)
    .await)?)
}

/// How many users the directory holds.
pub async fn count_users(db: &Db) -> Result<i64> {
    Ok(with_pool!(db.reader(), |c| sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM users").fetch_one(c).await)?)
}

/// Every group with its direct members and child groups.
pub async fn list_groups(db: &Db) -> Result<Vec<Group>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(rename = "ref")]
        group_ref: String,
        display_name: Option<String>,
        email: Option<String>,
        annotations: String,
    }
    let (rows, members, edges) = with_pool!(db.reader(), |c| {
        let rows = sqlx::query_as::<_, Row>("SELECT ref, display_name, email, annotations FROM groups ORDER BY ref")
            .fetch_all(c)
            .await?;
        let members = sqlx::query_as::<_, (String, String)>(
            "SELECT DISTINCT group_ref, user_ref FROM group_members ORDER BY group_ref, user_ref",
        )
        .fetch_all(c)
        .await?;
        let edges = sqlx::query_as::<_, (String, String)>(
            "SELECT DISTINCT parent_ref, child_ref FROM group_edges ORDER BY parent_ref, child_ref",
        )
        .fetch_all(c)
        .await?;
        Ok::<_, sqlx::Error>((rows, members, edges))
    })?;
    let mut by_group: BTreeMap<String, Group> = rows
        .into_iter()
        .map(|r| {
            (
                r.group_ref.clone(),
                Group {
                    group_ref: r.group_ref,
                    display_name: r.display_name,
                    email: r.email,
                    annotations: r.annotations,
                    members: vec![],
                    children: vec![],
                },
            )
        })
        .collect();
    for (g, u) in members {
        if let Some(group) = by_group.get_mut(&g) {
            group.members.push(u);
        }
    }
    for (p, ch) in edges {
        if let Some(group) = by_group.get_mut(&p) {
            group.children.push(ch);
        }
    }
    Ok(by_group.into_values().collect())
}

/// Every user in a group or any group below it. Cycles in the group graph are harmless:
/// `UNION` (not `UNION ALL`) stops the recursion at groups already seen.
pub async fn group_members(db: &Db, group: &EntityRef) -> Result<Vec<EntityRef>> {
    let users = with_pool!(db.reader(), |c| sqlx::query_scalar::<_, String>(
        "WITH RECURSIVE g(ref) AS (
             SELECT CAST($1 AS TEXT)
             UNION
             SELECT e.child_ref FROM group_edges e JOIN g ON e.parent_ref = g.ref
         )
         SELECT DISTINCT m.user_ref FROM group_members m JOIN g ON m.group_ref = g.ref
         ORDER BY m.user_ref"
    )
    .bind(group.as_str())
    .fetch_all(c)
    .await)?;
    Ok(users.into_iter().map(EntityRef::from_normalised).collect())
}

/// Every group a user belongs to, directly or through nesting.
pub async fn groups_of(db: &Db, user: &EntityRef) -> Result<Vec<EntityRef>> {
    let groups = with_pool!(db.reader(), |c| sqlx::query_scalar::<_, String>(
        "WITH RECURSIVE g(ref) AS (
             SELECT group_ref FROM group_members WHERE user_ref = $1
             UNION
             SELECT e.parent_ref FROM group_edges e JOIN g ON e.child_ref = g.ref
         )
         SELECT ref FROM g ORDER BY ref"
    )
    .bind(user.as_str())
    .fetch_all(c)
    .await)?;
    Ok(groups.into_iter().map(EntityRef::from_normalised).collect())
}

/// Turns recipient refs into the set of users to notify: users as given (also users the
/// directory does not know yet), groups expanded recursively, then every excluded user and
/// every member of an excluded group removed.
pub async fn resolve_recipients(db: &Db, include: &[EntityRef], exclude: &[EntityRef]) -> Result<Vec<EntityRef>> {
    let mut users = BTreeSet::new();
    for r in include {
        match r.kind() {
            EntityKind::User => {
                users.insert(r.clone());
            }
            EntityKind::Group => users.extend(group_members(db, r).await?),
        }
    }
    for r in exclude {
        match r.kind() {
            EntityKind::User => {
                users.remove(r);
            }
            EntityKind::Group => {
                for u in group_members(db, r).await? {
                    users.remove(&u);
                }
            }
        }
    }
    Ok(users.into_iter().collect())
}

fn kind_must_be(r: &EntityRef, kind: EntityKind) -> Result<()> {
    if r.kind() != kind {
        let want = if kind == EntityKind::User { "user" } else { "group" };
        return Err(Error::Invalid(format!("'{r}' is not a {want} ref")));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Catalog import

/// One catalog entity as parsed from YAML.
#[derive(Debug, Default)]
struct Entity {
    kind: String,
    name: String,
    namespace: String,
    annotations: BTreeMap<String, String>,
    display_name: Option<String>,
    email: Option<String>,
    member_of: Vec<String>,
    parent: Option<String>,
    children: Vec<String>,
    members: Vec<String>,
}

/// Parses catalog entity YAML (one or more `---`-separated documents).
fn parse_catalog(yaml: &str) -> Result<Vec<Entity>> {
    use serde_yaml::Value;
    let mut out = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(yaml).enumerate() {
        let value =
            Value::deserialize(doc).map_err(|e| Error::Invalid(format!("document {}: not valid YAML: {e}", i + 1)))?;
        if value.is_null() {
            continue;
        }
        let str_at = |v: &Value, path: &[&str]| -> Option<String> {
            let mut cur = v;
            for p in path {
                cur = cur.get(*p)?;
            }
            cur.as_str().map(str::to_string)
        };
        let list_at = |v: &Value, path: &[&str]| -> Vec<String> {
            let mut cur = v;
            for p in path {
                match cur.get(*p) {
                    Some(next) => cur = next,
                    None => return vec![],
                }
            }
            cur.as_sequence()
                .map(|s| s.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                .unwrap_or_default()
        };
        let kind = str_at(&value, &["kind"]).unwrap_or_default();
        let name = str_at(&value, &["metadata", "name"]).unwrap_or_default();
        if (kind == "User" || kind == "Group") && name.is_empty() {
            return Err(Error::Invalid(format!("document {}: {kind} without metadata.name", i + 1)));
        }
        let annotations = value
            .get("metadata")
            .and_then(|m| m.get("annotations"))
            .and_then(Value::as_mapping)
            .map(|m| m.iter().filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string()))).collect())
            .unwrap_or_default();
        out.push(Entity {
            kind,
            name,
            namespace: str_at(&value, &["metadata", "namespace"]).unwrap_or_else(|| "default".into()),
            annotations,
            display_name: str_at(&value, &["spec", "profile", "displayName"]),
            email: str_at(&value, &["spec", "profile", "email"]),
            member_of: list_at(&value, &["spec", "memberOf"]),
            parent: str_at(&value, &["spec", "parent"]),
            children: list_at(&value, &["spec", "children"]),
            members: list_at(&value, &["spec", "members"]),
        });
    }
    Ok(out)
}

/// A relation target as catalog files write it: `name`, `ns/name` or `kind:ns/name`, relative
/// to the entity's own namespace.
fn catalog_ref(s: &str, kind: EntityKind, namespace: &str) -> Result<EntityRef> {
    let qualified = match (s.contains(':'), s.contains('/')) {
        (_, true) => s.to_string(),
        (true, false) => {
            let (k, n) = s.split_once(':').unwrap_or(("", s));
            format!("{k}:{namespace}/{n}")
        }
        (false, false) => format!("{namespace}/{s}"),
    };
    EntityRef::parse_with_default(&qualified, Some(kind)).map_err(|e| Error::Invalid(e.0))
}

/// A catalog file read and checked, with every reference resolved: nothing is stored yet,
/// so a file with one bad entry changes nothing.
pub struct Catalog {
    entries: Vec<Entry>,
}

/// One document of a catalog file.
enum Entry {
    User {
        user: EntityRef,
        groups: Vec<EntityRef>,
        entity: Entity,
    },
    Group {
        group: EntityRef,
        parent: Option<EntityRef>,
        children: Vec<EntityRef>,
        members: Vec<EntityRef>,
        entity: Entity,
    },
    /// Components, systems and other kinds, passed over.
    Other,
}

impl Catalog {
    /// Parses catalog YAML (one or more `---`-separated documents) and resolves each
    /// entity's own reference and its relations.
    pub fn parse(yaml: &str) -> Result<Catalog> {
        let mut entries = Vec::new();
        for e in parse_catalog(yaml)? {
            let own = |kind| catalog_ref(&format!("{}/{}", e.namespace, e.name), kind, &e.namespace);
            let refs = |list: &[String], kind| {
                list.iter().map(|r| catalog_ref(r, kind, &e.namespace)).collect::<Result<Vec<_>>>()
            };
            let entry = match e.kind.as_str() {
                "User" => Entry::User {
                    user: own(EntityKind::User)?,
                    groups: refs(&e.member_of, EntityKind::Group)?,
                    entity: e,
                },
                "Group" => Entry::Group {
                    group: own(EntityKind::Group)?,
                    parent: e.parent.as_deref().map(|p| catalog_ref(p, EntityKind::Group, &e.namespace)).transpose()?,
                    children: refs(&e.children, EntityKind::Group)?,
                    members: refs(&e.members, EntityKind::User)?,
                    entity: e,
                },
                _ => Entry::Other,
            };
            entries.push(entry);
        }
        Ok(Catalog { entries })
    }

    /// How many users and groups the file holds, and how many documents it passes over.
    pub fn summary(&self) -> ImportSummary {
        let mut summary = ImportSummary::default();
        for e in &self.entries {
            match e {
                Entry::User { .. } => summary.users += 1,
                Entry::Group { .. } => summary.groups += 1,
                Entry::Other => summary.skipped += 1,
            }
        }
        summary
    }

    /// The users and groups, as references.
    pub fn refs(&self) -> impl Iterator<Item = &EntityRef> {
        self.entries.iter().filter_map(|e| match e {
            Entry::User { user, .. } => Some(user),
            Entry::Group { group, .. } => Some(group),
            Entry::Other => None,
        })
    }
}

/// Imports users and groups from catalog YAML. Importing the same entity again updates it
/// and replaces the relations it declares; nothing is duplicated.
pub async fn import_catalog(db: &Db, yaml: &str) -> Result<ImportSummary> {
    let catalog = Catalog::parse(yaml)?;
    let mut tx = db.begin().await?;
    for entry in &catalog.entries {
        match entry {
            Entry::User { user, groups, entity } => {
                let annotations = serde_json::to_string(&entity.annotations)?;
                import_user(&mut tx, user, entity, &annotations, groups).await?;
            }
            Entry::Group { group, parent, children, members, entity } => {
                let annotations = serde_json::to_string(&entity.annotations)?;
                import_group(&mut tx, group, entity, &annotations, parent.as_ref(), children, members).await?;
            }
            Entry::Other => {}
        }
    }
    tx.commit().await?;
    Ok(catalog.summary())
}

/// Creates or updates a user or group row from its catalog entry.
async fn upsert_entity(tx: &mut Tx, table: &str, r: &EntityRef, e: &Entity, annotations: &str) -> Result<()> {
    // `table` is "users" or "groups", fixed by the callers.
    let sql = format!(
        "INSERT INTO {table} (ref, display_name, email, annotations, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (ref) DO UPDATE SET display_name = excluded.display_name,
             email = excluded.email, annotations = excluded.annotations"
    );
    with_tx!(tx, |c| sqlx::query(&sql)
        .bind(r.as_str())
        .bind(&e.display_name)
        .bind(&e.email)
        .bind(annotations)
        .bind(now_ms())
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Runs one statement with two text parameters (deleting or adding a relation).
async fn relation(tx: &mut Tx, sql: &str, a: &str, b: &str) -> Result<()> {
    with_tx!(tx, |c| sqlx::query(sql).bind(a).bind(b).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

async fn import_user(tx: &mut Tx, user: &EntityRef, e: &Entity, annotations: &str, groups: &[EntityRef]) -> Result<()> {
    upsert_entity(tx, "users", user, e, annotations).await?;
    relation(tx, "DELETE FROM group_members WHERE user_ref = $1 AND source = $2", user.as_str(), "user").await?;
    for g in groups {
        relation(tx, ADD_MEMBER_BY_USER, g.as_str(), user.as_str()).await?;
    }
    Ok(())
}

const ADD_MEMBER_BY_USER: &str =
    "INSERT INTO group_members (group_ref, user_ref, source) VALUES ($1, $2, 'user') ON CONFLICT DO NOTHING";
const ADD_MEMBER_BY_GROUP: &str =
    "INSERT INTO group_members (group_ref, user_ref, source) VALUES ($1, $2, 'group') ON CONFLICT DO NOTHING";
const ADD_EDGE_BY_CHILD: &str =
    "INSERT INTO group_edges (parent_ref, child_ref, source) VALUES ($1, $2, 'child') ON CONFLICT DO NOTHING";
const ADD_EDGE_BY_PARENT: &str =
    "INSERT INTO group_edges (parent_ref, child_ref, source) VALUES ($1, $2, 'parent') ON CONFLICT DO NOTHING";

async fn import_group(
    tx: &mut Tx,
    group: &EntityRef,
    e: &Entity,
    annotations: &str,
    parent: Option<&EntityRef>,
    children: &[EntityRef],
    members: &[EntityRef],
) -> Result<()> {
    upsert_entity(tx, "groups", group, e, annotations).await?;
    // Replace exactly what this group's entry declares; what other entries declare stays.
    relation(tx, "DELETE FROM group_members WHERE group_ref = $1 AND source = $2", group.as_str(), "group").await?;
    relation(
        tx,
        "DELETE FROM group_edges WHERE (child_ref = $1 AND source = 'child') OR (parent_ref = $1 AND source = $2)",
        group.as_str(),
        "parent",
    )
    .await?;
    for m in members {
        relation(tx, ADD_MEMBER_BY_GROUP, group.as_str(), m.as_str()).await?;
    }
    if let Some(p) = parent {
        relation(tx, ADD_EDGE_BY_CHILD, p.as_str(), group.as_str()).await?;
    }
    for ch in children {
        relation(tx, ADD_EDGE_BY_PARENT, group.as_str(), ch.as_str()).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_refs_are_relative_to_the_entity_namespace() {
        let r = |s| catalog_ref(s, EntityKind::Group, "ops").unwrap().to_string();
        assert_eq!(r("team-a"), "group:ops/team-a");
        assert_eq!(r("group:team-a"), "group:ops/team-a");
        assert_eq!(r("default/team-a"), "group:default/team-a");
        assert_eq!(r("group:Default/Team-A"), "group:default/team-a");
    }

    #[test]
    fn catalog_yaml_parses_users_and_groups() {
        let yaml = "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata:\n  name: alice\n  annotations:\n    slack.com/user-id: U1\nspec:\n  profile:\n    displayName: Alice\n    email: alice@example.com\n  memberOf: [team-a]\n---\nkind: Group\nmetadata: {name: team-a}\nspec:\n  type: team\n  parent: eng\n  children: []\n  members: [bob]\n---\nkind: Component\nmetadata: {name: x}\n";
        let es = parse_catalog(yaml).unwrap();
        assert_eq!(es.len(), 3);
        assert_eq!(es[0].display_name.as_deref(), Some("Alice"));
        assert_eq!(es[0].annotations.get("slack.com/user-id").map(String::as_str), Some("U1"));
        assert_eq!(es[1].parent.as_deref(), Some("eng"));
        assert_eq!(es[1].members, vec!["bob".to_string()]);
        assert!(parse_catalog("kind: User\nmetadata: {}\n").is_err());
        assert!(parse_catalog(": : :\n- [").is_err());
    }
}
