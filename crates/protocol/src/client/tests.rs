//! The client against a scripted broker: the test plays the broker with the same codec,
//! feeds bytes, reads what the client writes, and moves time by hand.

use super::*;
use crate::decode_up;

const S: Duration = Duration::from_secs(1);

fn t(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

fn dev() -> DeviceId {
    DeviceId::new("demo-product", "dev-1").unwrap()
}

/// Encodes one broker packet.
fn enc(write: impl FnOnce(&mut BytesMut) -> Result<usize, mqttbytes::Error>) -> Vec<u8> {
    let mut b = BytesMut::new();
    write(&mut b).unwrap();
    b.to_vec()
}

fn connack(code: v4::ConnectReturnCode) -> Vec<u8> {
    enc(|b| v4::ConnAck::new(code, false).write(b))
}

fn suback(pid: u16, codes: Vec<v4::SubscribeReasonCode>) -> Vec<u8> {
    enc(|b| v4::SubAck::new(pid, codes).write(b))
}

fn puback(pid: u16) -> Vec<u8> {
    enc(|b| v4::PubAck::new(pid).write(b))
}

fn pingresp() -> Vec<u8> {
    enc(|b| v4::PingResp.write(b))
}

fn publish(topic: &str, qos: QoS, pid: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = v4::Publish::new(topic, qos, payload.to_vec());
    p.pkid = pid;
    enc(|b| p.write(b))
}

/// Every packet the client wrote since the last call, decoded as a broker would.
fn sent(c: &mut Client) -> Vec<Packet> {
    let mut b = BytesMut::new();
    while let Some(bytes) = c.poll_transmit() {
        b.extend_from_slice(&bytes);
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        out.push(v4::read(&mut b, 1 << 20).expect("the client writes whole, valid packets"));
    }
    out
}

fn events(c: &mut Client) -> Vec<ClientEvent> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

/// A device client connected at `now`: CONNECT, CONNACK, SUBSCRIBE answered.
fn connected(now: Duration) -> Client {
    let mut c = Client::device(&dev(), "secret", now);
    c.transport_opened(now);
    sent(&mut c);
    c.handle_input(&connack(v4::ConnectReturnCode::Success), now);
    let Some(Packet::Subscribe(s)) = sent(&mut c).into_iter().next() else {
        panic!("no SUBSCRIBE after CONNACK")
    };
    c.handle_input(
        &suback(
            s.pkid,
            vec![v4::SubscribeReasonCode::Success(QoS::AtLeastOnce)],
        ),
        now,
    );
    assert_eq!(events(&mut c), [ClientEvent::Connected]);
    c
}

fn lost(events: &[ClientEvent]) -> Option<(&str, Duration)> {
    events.iter().find_map(|e| match e {
        ClientEvent::Lost { reason, retry_in } => Some((reason.as_str(), *retry_in)),
        _ => None,
    })
}

#[test]
fn connects_with_the_device_login_and_subscribes_to_its_down_topic() {
    let mut c = Client::device(&dev(), "s3cret", t(0));
    assert!(
        sent(&mut c).is_empty(),
        "nothing before the transport is open"
    );
    c.transport_opened(t(0));
    let [Packet::Connect(connect)] = &sent(&mut c)[..] else {
        panic!("one CONNECT")
    };
    assert_eq!(connect.client_id, "demo-product&dev-1");
    let login = connect.login.as_ref().unwrap();
    assert_eq!(
        (login.username.as_str(), login.password.as_str()),
        ("demo-product&dev-1", "s3cret")
    );
    assert_eq!(connect.keep_alive, 30);
    assert!(connect.clean_session);
    assert_eq!(c.poll_timeout(), Some(t(10)), "CONNACK due");

    c.handle_input(&connack(v4::ConnectReturnCode::Success), t(1));
    assert_eq!(events(&mut c), [ClientEvent::Connected]);
    assert!(c.is_connected());
    let [Packet::Subscribe(sub)] = &sent(&mut c)[..] else {
        panic!("one SUBSCRIBE")
    };
    assert_eq!(sub.filters.len(), 1);
    assert_eq!(sub.filters[0].path, "sota/demo-product/dev-1/down");
    assert_eq!(sub.filters[0].qos, QoS::AtLeastOnce);
    assert_eq!(c.poll_timeout(), Some(t(31)), "first ping due");
}

#[test]
fn several_packets_in_one_chunk_and_packets_split_anywhere() {
    let mut c = Client::device(&dev(), "s", t(0));
    c.transport_opened(t(0));
    sent(&mut c);
    // CONNACK, SUBACK and two messages in one chunk.
    let mut chunk = connack(v4::ConnectReturnCode::Success);
    chunk.extend(suback(
        1,
        vec![v4::SubscribeReasonCode::Success(QoS::AtLeastOnce)],
    ));
    chunk.extend(publish(
        "sota/demo-product/dev-1/down",
        QoS::AtLeastOnce,
        7,
        b"one",
    ));
    chunk.extend(publish(
        "sota/demo-product/dev-1/down",
        QoS::AtMostOnce,
        0,
        b"two",
    ));
    c.handle_input(&chunk, t(0));
    let got = events(&mut c);
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[0], ClientEvent::Connected);
    assert_eq!(
        got[1],
        ClientEvent::Message {
            topic: "sota/demo-product/dev-1/down".into(),
            payload: b"one".to_vec()
        }
    );
    let acks: Vec<_> = sent(&mut c)
        .into_iter()
        .filter_map(|p| match p {
            Packet::PubAck(a) => Some(a.pkid),
            _ => None,
        })
        .collect();
    assert_eq!(acks, [7], "QoS 1 acknowledged, QoS 0 not");

    // A 300-byte message (two-byte remaining length), a PINGRESP and another message.
    let big = vec![b'x'; 300];
    let mut stream = publish("sota/demo-product/dev-1/down", QoS::AtLeastOnce, 8, &big);
    stream.extend(pingresp());
    stream.extend(publish(
        "sota/demo-product/dev-1/down",
        QoS::AtLeastOnce,
        9,
        b"z",
    ));
    // Chunks that end mid-packet, everywhere.
    let mut c = connected(t(0));
    for cut in 1..stream.len() {
        c.handle_input(&stream[..cut], t(2));
        c.handle_input(&stream[cut..], t(2));
        let got = events(&mut c);
        assert_eq!(got.len(), 2, "cut at {cut}: {got:?}");
        assert!(matches!(&got[0], ClientEvent::Message { payload, .. } if *payload == big));
        assert!(matches!(&got[1], ClientEvent::Message { payload, .. } if payload == b"z"));
        assert_eq!(sent(&mut c).len(), 2, "two PUBACKs");
    }
}

#[test]
fn a_message_fed_byte_by_byte_arrives_once_when_its_last_byte_does() {
    let mut c = connected(t(0));
    let bytes = publish(
        "sota/demo-product/dev-1/down",
        QoS::AtLeastOnce,
        3,
        &[0u8; 200],
    );
    for (i, byte) in bytes.iter().enumerate() {
        c.handle_input(&[*byte], t(0));
        let got = events(&mut c);
        if i + 1 == bytes.len() {
            assert_eq!(got.len(), 1);
        } else {
            assert!(got.is_empty(), "at byte {i}: {got:?}");
        }
    }
}

#[test]
fn publishes_queue_while_disconnected_and_go_out_in_order_after_the_subscribe() {
    let mut c = Client::device(&dev(), "s", t(0));
    let a = c.publish_up(&Up::Request).unwrap();
    let b = c
        .publish("sota/demo-product/dev-1/up", b"second".to_vec())
        .unwrap();
    assert_eq!(c.queued(), 2);
    c.transport_opened(t(0));
    assert_eq!(sent(&mut c).len(), 1, "only the CONNECT before the CONNACK");
    c.handle_input(&connack(v4::ConnectReturnCode::Success), t(0));
    let out = sent(&mut c);
    assert!(matches!(out[0], Packet::Subscribe(_)), "{out:?}");
    let [Packet::Publish(p1), Packet::Publish(p2)] = &out[1..] else {
        panic!("two PUBLISHes: {out:?}")
    };
    assert_eq!(p1.topic, "sota/demo-product/dev-1/up");
    assert_eq!(
        decode_up(&p1.payload, &dev()).unwrap(),
        Up::Request,
        "publish_up sends the protocol's JSON"
    );
    assert_eq!(&p2.payload[..], b"second");
    assert_eq!((p1.qos, p1.dup, p2.dup), (QoS::AtLeastOnce, false, false));
    assert_ne!(p1.pkid, p2.pkid);

    c.handle_input(&puback(p2.pkid), t(1));
    c.handle_input(&puback(p1.pkid), t(1));
    assert_eq!(
        events(&mut c),
        [
            ClientEvent::Connected,
            ClientEvent::Delivered(b),
            ClientEvent::Delivered(a)
        ]
    );
    assert_eq!(c.queued(), 0);

    // Connected: sent at once.
    c.publish("sota/demo-product/dev-1/up", b"now".to_vec())
        .unwrap();
    assert!(matches!(&sent(&mut c)[..], [Packet::Publish(p)] if &p.payload[..] == b"now"));
}

#[test]
fn unacknowledged_messages_are_resent_with_dup_after_a_reconnect() {
    let mut c = connected(t(0));
    c.publish("sota/demo-product/dev-1/up", b"1".to_vec())
        .unwrap();
    c.publish("sota/demo-product/dev-1/up", b"2".to_vec())
        .unwrap();
    let out = sent(&mut c);
    let pids: Vec<u16> = out
        .iter()
        .map(|p| match p {
            Packet::Publish(p) => p.pkid,
            other => panic!("{other:?}"),
        })
        .collect();
    c.handle_input(&puback(pids[0]), t(1));
    c.transport_closed("the socket closed", t(2));
    // Published while away: not sent yet, not DUP later.
    c.publish("sota/demo-product/dev-1/up", b"3".to_vec())
        .unwrap();
    let got = events(&mut c);
    assert!(matches!(got[0], ClientEvent::Delivered(_)));
    assert_eq!(lost(&got), Some(("the socket closed", S)));
    assert!(sent(&mut c).is_empty());

    assert_eq!(c.poll_timeout(), Some(t(3)));
    c.handle_timeout(t(3));
    assert_eq!(events(&mut c), [ClientEvent::Reconnect]);
    c.transport_opened(t(3));
    assert!(matches!(&sent(&mut c)[..], [Packet::Connect(_)]));
    c.handle_input(&connack(v4::ConnectReturnCode::Success), t(3));
    let out = sent(&mut c);
    let publishes: Vec<(Vec<u8>, bool, u16)> = out
        .iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => Some((p.payload.to_vec(), p.dup, p.pkid)),
            _ => None,
        })
        .collect();
    assert_eq!(
        publishes,
        [
            (b"2".to_vec(), true, pids[1]),
            (b"3".to_vec(), false, publishes[1].2)
        ],
        "the acknowledged one is not resent; the rest in order"
    );
}

#[test]
fn keep_alive_pings_and_a_missing_answer_loses_the_connection() {
    let mut c = connected(t(0));
    assert_eq!(c.poll_timeout(), Some(t(30)));
    c.handle_timeout(t(29));
    assert!(sent(&mut c).is_empty(), "not before the interval");
    c.handle_timeout(t(30));
    assert!(matches!(&sent(&mut c)[..], [Packet::PingReq]));
    assert_eq!(c.poll_timeout(), Some(t(40)), "the answer is due in 10 s");
    c.handle_input(&pingresp(), t(31));
    assert_eq!(c.poll_timeout(), Some(t(60)));
    c.handle_timeout(t(60));
    assert!(matches!(&sent(&mut c)[..], [Packet::PingReq]));
    // Any packet shows the broker is alive.
    c.handle_input(
        &publish("sota/demo-product/dev-1/down", QoS::AtMostOnce, 0, b"{}"),
        t(61),
    );
    c.handle_timeout(t(70));
    assert!(events(&mut c)
        .iter()
        .all(|e| matches!(e, ClientEvent::Message { .. })));
    c.handle_timeout(t(90));
    assert!(matches!(&sent(&mut c)[..], [Packet::PingReq]));
    c.handle_timeout(t(99));
    assert!(events(&mut c).is_empty());
    c.handle_timeout(t(100));
    let got = events(&mut c);
    let (reason, retry_in) = lost(&got).expect("lost");
    assert!(reason.contains("keep-alive ping within 10 s"), "{reason}");
    assert_eq!(retry_in, S);
    assert!(!c.is_connected());
    c.handle_input(&pingresp(), t(100));
    assert!(
        events(&mut c).is_empty(),
        "a late answer on the old transport is ignored"
    );
}

#[test]
fn keep_alive_zero_sends_no_pings() {
    let mut o = Options::device(&dev(), "s");
    o.keep_alive = Duration::ZERO;
    let mut c = Client::new(o, t(0));
    c.transport_opened(t(0));
    let [Packet::Connect(connect)] = &sent(&mut c)[..] else {
        panic!()
    };
    assert_eq!(connect.keep_alive, 0);
    c.handle_input(&connack(v4::ConnectReturnCode::Success), t(0));
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn reconnects_back_off_from_1_s_doubling_to_30_s_and_reset_after_a_connack() {
    let mut c = Client::device(&dev(), "s", t(0));
    let mut now = t(0);
    let mut waits = Vec::new();
    for _ in 0..8 {
        c.transport_closed("refused by the network", now);
        let got = events(&mut c);
        let (_, retry_in) = lost(&got).unwrap();
        waits.push(retry_in.as_secs());
        let at = c.poll_timeout().unwrap();
        assert_eq!(at, now + retry_in);
        c.handle_timeout(at - Duration::from_millis(1));
        assert!(
            events(&mut c).is_empty(),
            "no reconnect before the backoff ran out"
        );
        now = at;
        c.handle_timeout(now);
        assert_eq!(events(&mut c), [ClientEvent::Reconnect]);
    }
    assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);

    c.transport_opened(now);
    c.handle_input(&connack(v4::ConnectReturnCode::Success), now);
    c.transport_closed("gone", now + S);
    let got = events(&mut c);
    assert_eq!(lost(&got), Some(("gone", S)), "reset by the CONNACK");
}

#[test]
fn no_connack_in_time_is_a_lost_connection_and_so_is_a_transport_that_never_opens() {
    let just_before = |at: Duration| at - Duration::from_millis(1);
    let mut c = Client::device(&dev(), "s", t(0));
    c.handle_timeout(just_before(t(10)));
    assert!(events(&mut c).is_empty(), "still within the wait");
    c.handle_timeout(t(10));
    let got = events(&mut c);
    assert!(lost(&got).unwrap().0.contains("did not open within 10 s"));
    c.handle_timeout(t(11));
    assert_eq!(events(&mut c), [ClientEvent::Reconnect]);
    c.transport_opened(t(11));
    sent(&mut c);
    assert_eq!(c.poll_timeout(), Some(t(21)));
    c.handle_timeout(just_before(t(21)));
    assert!(events(&mut c).is_empty(), "still within the wait");
    c.handle_timeout(t(21));
    let got = events(&mut c);
    assert!(lost(&got).unwrap().0.contains("CONNACK"));
}

#[test]
fn a_refused_login_is_final() {
    let mut c = Client::device(&dev(), "wrong", t(0));
    c.publish_up(&Up::Request).unwrap();
    c.transport_opened(t(0));
    sent(&mut c);
    c.handle_input(&connack(v4::ConnectReturnCode::BadUserNamePassword), t(0));
    let got = events(&mut c);
    let [ClientEvent::Refused { code: 4, text }] = &got[..] else {
        panic!("{got:?}")
    };
    assert!(text.starts_with("bad user name or password"), "{text}");
    assert!(sent(&mut c).is_empty(), "nothing sent after a refusal");
    assert_eq!(c.poll_timeout(), None);
    c.transport_closed("the broker closed the socket", t(1));
    c.handle_timeout(t(3600));
    c.transport_opened(t(3600));
    assert!(
        events(&mut c).is_empty(),
        "no Lost, no Reconnect: {:?}",
        events(&mut c)
    );
    assert!(sent(&mut c).is_empty());
    assert_eq!(
        c.publish_up(&Up::Request),
        Err(PublishError::Closed),
        "and publishing says so"
    );

    let mut c = Client::device(&dev(), "product secret", t(0));
    c.transport_opened(t(0));
    c.handle_input(&connack(v4::ConnectReturnCode::NotAuthorized), t(0));
    assert!(matches!(
        &events(&mut c)[..],
        [ClientEvent::Refused { code: 5, text }] if text.contains("device secret")
    ));
}

#[test]
fn a_broker_that_cannot_take_a_login_now_is_tried_again_and_nothing_is_lost() {
    let mut c = Client::device(&dev(), "secret", t(0));
    c.publish_up(&Up::Request).unwrap();
    c.transport_opened(t(0));
    sent(&mut c);
    c.handle_input(&connack(v4::ConnectReturnCode::ServiceUnavailable), t(0));
    let got = events(&mut c);
    let (reason, retry_in) = lost(&got).expect("a loss, not a refusal");
    assert!(reason.starts_with("server unavailable"), "{reason}");
    assert_eq!(retry_in, Duration::from_secs(1));
    c.transport_closed("the broker closed the socket", t(0));
    c.handle_timeout(t(1));
    assert_eq!(events(&mut c), [ClientEvent::Reconnect]);
    c.transport_opened(t(1));
    sent(&mut c);
    c.handle_input(&connack(v4::ConnectReturnCode::Success), t(1));
    assert!(events(&mut c).contains(&ClientEvent::Connected));
    let resent = sent(&mut c);
    assert!(
        resent.iter().any(
            |p| matches!(p, Packet::Publish(p) if p.payload.windows(7).any(|w| w == b"request"))
        ),
        "the queued request goes out: {resent:?}"
    );
}

#[test]
fn the_queue_is_bounded_with_a_clear_error() {
    let mut o = Options::device(&dev(), "s");
    o.max_queue = 2;
    let mut c = Client::new(o, t(0));
    c.publish_up(&Up::Request).unwrap();
    c.publish_up(&Up::Request).unwrap();
    let err = c.publish_up(&Up::Request).unwrap_err();
    assert_eq!(err, PublishError::QueueFull { max: 2 });
    assert!(err.to_string().contains("2 messages already wait"), "{err}");
    assert_eq!(c.queued(), 2);
}

#[test]
fn bad_topics_and_non_devices_are_refused() {
    let mut c = Client::new(Options::new("c", "u", "p"), t(0));
    assert_eq!(c.publish_up(&Up::Request), Err(PublishError::NotADevice));
    assert!(matches!(
        c.publish("", b"".to_vec()),
        Err(PublishError::Invalid(_))
    ));
    assert!(matches!(
        c.publish("sota/+/d/up", b"".to_vec()),
        Err(PublishError::Invalid(_))
    ));
    assert_eq!(c.queued(), 0);
    // No login sent when none is given; no SUBSCRIBE without subscriptions.
    let mut c = Client::new(Options::new("c", "", ""), t(0));
    c.transport_opened(t(0));
    let [Packet::Connect(connect)] = &sent(&mut c)[..] else {
        panic!()
    };
    assert_eq!(connect.login, None);
    c.handle_input(&connack(v4::ConnectReturnCode::Success), t(0));
    assert!(sent(&mut c).is_empty());
}

#[test]
fn protocol_violations_lose_the_connection() {
    // A packet before the CONNACK.
    let mut c = Client::device(&dev(), "s", t(0));
    c.transport_opened(t(0));
    c.handle_input(&pingresp(), t(0));
    assert!(lost(&events(&mut c)).unwrap().0.contains("PINGRESP before"));

    // Garbage.
    let mut c = connected(t(0));
    c.handle_input(&[0xF0, 0x00], t(0));
    assert!(lost(&events(&mut c)).unwrap().0.contains("malformed"));

    // More than the size bound: refused from the header alone.
    let mut c = connected(t(0));
    c.handle_input(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F], t(0));
    let got = events(&mut c);
    assert!(lost(&got).unwrap().0.contains("268435455 bytes"), "{got:?}");

    // QoS 2 above the subscription.
    let mut c = connected(t(0));
    c.handle_input(
        &publish("sota/demo-product/dev-1/down", QoS::ExactlyOnce, 1, b"x"),
        t(0),
    );
    assert!(lost(&events(&mut c)).unwrap().0.contains("QoS 2"));
    assert!(sent(&mut c).is_empty(), "nothing acknowledged");
}

#[test]
fn a_refused_subscription_is_reported() {
    let mut c = Client::device(&dev(), "s", t(0));
    c.transport_opened(t(0));
    sent(&mut c);
    c.handle_input(&connack(v4::ConnectReturnCode::Success), t(0));
    let [Packet::Subscribe(s)] = &sent(&mut c)[..] else {
        panic!()
    };
    c.handle_input(
        &suback(s.pkid, vec![v4::SubscribeReasonCode::Failure]),
        t(0),
    );
    assert_eq!(
        events(&mut c),
        [
            ClientEvent::Connected,
            ClientEvent::SubscriptionRefused {
                topic: "sota/demo-product/dev-1/down".into()
            }
        ]
    );
}

#[test]
fn disconnect_sends_disconnect_and_ends_everything() {
    let mut c = connected(t(0));
    c.disconnect();
    assert!(matches!(&sent(&mut c)[..], [Packet::Disconnect]));
    assert_eq!(c.poll_timeout(), None);
    c.transport_closed("closed", t(1));
    assert!(events(&mut c).is_empty());
    assert_eq!(
        c.publish("sota/demo-product/dev-1/up", b"x".to_vec()),
        Err(PublishError::Closed)
    );
}

#[test]
fn packet_ids_skip_those_still_waiting() {
    let mut c = connected(t(0));
    let mut pids = std::collections::HashSet::new();
    for i in 0..70_000u32 {
        c.publish("sota/demo-product/dev-1/up", i.to_be_bytes().to_vec())
            .unwrap();
        let [Packet::Publish(p)] = &sent(&mut c)[..] else {
            panic!()
        };
        if i == 0 {
            // The first stays unacknowledged through the wrap-around.
            pids.insert(p.pkid);
            continue;
        }
        assert!(
            !pids.contains(&p.pkid),
            "id {} reused while waiting",
            p.pkid
        );
        c.handle_input(&puback(p.pkid), t(0));
    }
    assert_eq!(c.queued(), 1);
}

#[test]
fn the_largest_center_message_is_taken_by_default() {
    let mut c = connected(t(0));
    let largest = vec![b'x'; MAX_DOWN_BYTES];
    c.handle_input(
        &publish(
            "sota/demo-product/dev-1/down",
            QoS::AtLeastOnce,
            4,
            &largest,
        ),
        t(0),
    );
    let got = events(&mut c);
    assert!(
        matches!(&got[..], [ClientEvent::Message { payload, .. }] if payload.len() == MAX_DOWN_BYTES),
        "{:?}",
        got.iter()
            .map(|e| format!("{e:?}").chars().take(80).collect::<String>())
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_user_name_or_a_password_alone_is_still_sent() {
    for (username, password) in [("u", ""), ("", "p")] {
        let mut c = Client::new(Options::new("c", username, password), t(0));
        c.transport_opened(t(0));
        let [Packet::Connect(connect)] = &sent(&mut c)[..] else {
            panic!("one CONNECT")
        };
        let login = connect.login.as_ref().expect("a login");
        assert_eq!(
            (login.username.as_str(), login.password.as_str()),
            (username, password)
        );
    }
}

#[test]
fn a_topic_may_be_65535_bytes_long_and_not_one_more() {
    let mut c = Client::new(Options::new("c", "u", "p"), t(0));
    let longest = "t".repeat(65_535);
    assert!(c.publish(&longest, b"x".to_vec()).is_ok());
    assert_eq!(
        c.publish(&format!("{longest}t"), b"x".to_vec()),
        Err(PublishError::Invalid(
            "a topic is 1 to 65,535 bytes, not 65536".into()
        ))
    );
    assert_eq!(c.queued(), 1);
}

#[test]
fn message_ids_count_up_from_1() {
    let mut c = connected(t(0));
    let ids: Vec<MessageId> = (0..3)
        .map(|_| c.publish_up(&Up::Request).unwrap())
        .collect();
    assert_eq!(ids, [MessageId(1), MessageId(2), MessageId(3)]);
}

#[test]
fn a_publish_while_the_subscribe_waits_takes_another_packet_id() {
    let mut c = Client::device(&dev(), "s", t(0));
    c.transport_opened(t(0));
    sent(&mut c);
    c.handle_input(&connack(v4::ConnectReturnCode::Success), t(0));
    let [Packet::Subscribe(s)] = &sent(&mut c)[..] else {
        panic!("one SUBSCRIBE")
    };
    c.publish_up(&Up::Request).unwrap();
    let [Packet::Publish(p)] = &sent(&mut c)[..] else {
        panic!("one PUBLISH")
    };
    assert_ne!(
        p.pkid, s.pkid,
        "the SUBACK and the PUBACK must not be confused"
    );
    // The SUBACK still answers the SUBSCRIBE, the PUBACK the message.
    c.handle_input(
        &suback(s.pkid, vec![v4::SubscribeReasonCode::Failure]),
        t(0),
    );
    c.handle_input(&puback(p.pkid), t(0));
    let got = events(&mut c);
    assert_eq!(
        got[1..],
        [
            ClientEvent::SubscriptionRefused {
                topic: "sota/demo-product/dev-1/down".into()
            },
            ClientEvent::Delivered(MessageId(1))
        ]
    );
}
