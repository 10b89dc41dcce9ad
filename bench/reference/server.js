// The reference server for tete's benchmark: the classic "private web chat" of the
// seed (Node.js + Express + Socket.IO), ported to express 4 + socket.io 4.
//
// GET /create -> 302 /chat/<random id>; GET /chat/:id -> a tiny page.
// Namespace /socket, path /socket.io/. Two people per room, everything in memory.
//
//   load  (room id)            -> peopleinchat {number:0} | {number:1,user,avatar,id}
//                                 | tooMany {boolean:true}            (to the sender)
//   login {user, avatar, id}   -> img <gravatar url> (sender), join the room,
//                                 startChat {boolean,id,users,avatars} (room, when 2)
//                                 | tooMany (sender, when full)
//   msg   {msg, user, img}     -> receive {msg, user, img}            (the partner)
//   disconnect                 -> leave {boolean, room, user, avatar} (the partner)
//
// The seed found a room's people by scanning every socket of the namespace
// (findClientsSocket, which relied on socket.io 1.x internals); this port asks the
// adapter for the room instead, which is O(1) and the idiomatic socket.io 4 way, so the
// baseline is not handicapped. The seed's tooMany-to-everybody bug is fixed (sender only).
'use strict';

const crypto = require('crypto');
const http = require('http');
const express = require('express');
const { Server } = require('socket.io');

const app = express();
const server = http.createServer(app);
const io = new Server(server, { path: '/socket.io/' });
const chat = io.of('/socket');

function gravatar(email) {
  const hash = crypto
    .createHash('md5')
    .update(String(email || '').trim().toLowerCase())
    .digest('hex');
  return 'https://www.gravatar.com/avatar/' + hash + '?s=140&r=x&d=mm';
}

function peopleIn(room) {
  const ids = chat.adapter.rooms.get(room);
  if (!ids) return [];
  const people = [];
  for (const id of ids) {
    const s = chat.sockets.get(id);
    if (s) people.push(s);
  }
  return people;
}

app.get('/', (req, res) => {
  res.type('html').send('<!doctype html><title>chat</title><a href="/create">Create a private room</a>');
});

app.get('/create', (req, res) => {
  res.redirect('/chat/' + crypto.randomBytes(16).toString('base64url'));
});

app.get('/chat/:id', (req, res) => {
  res
    .type('html')
    .send('<!doctype html><title>chat</title><p>Private chat room. Open this page in two browsers.</p>');
});

chat.on('connection', (socket) => {
  socket.on('load', (room) => {
    const people = peopleIn(room);
    if (people.length === 0) {
      socket.emit('peopleinchat', { number: 0 });
    } else if (people.length === 1) {
      socket.emit('peopleinchat', {
        number: 1,
        user: people[0].data.username,
        avatar: people[0].data.avatar,
        id: room,
      });
    } else {
      socket.emit('tooMany', { boolean: true });
    }
  });

  socket.on('login', (data) => {
    if (!data || typeof data !== 'object') return;
    const people = peopleIn(data.id);
    if (people.length < 2) {
      socket.data.username = data.user;
      socket.data.room = data.id;
      socket.data.avatar = gravatar(data.avatar);
      socket.emit('img', socket.data.avatar);
      socket.join(data.id);
      if (people.length === 1) {
        chat.in(data.id).emit('startChat', {
          boolean: true,
          id: data.id,
          users: [people[0].data.username, socket.data.username],
          avatars: [people[0].data.avatar, socket.data.avatar],
        });
      }
    } else {
      socket.emit('tooMany', { boolean: true });
    }
  });

  socket.on('msg', (data) => {
    if (!data || typeof data !== 'object' || socket.data.room === undefined) return;
    socket.broadcast
      .to(socket.data.room)
      .emit('receive', { msg: data.msg, user: data.user, img: data.img });
  });

  socket.on('disconnect', () => {
    if (socket.data.room === undefined) return;
    socket.broadcast.to(socket.data.room).emit('leave', {
      boolean: true,
      room: socket.data.room,
      user: socket.data.username,
      avatar: socket.data.avatar,
    });
  });
});

const port = Number(process.env.PORT || 8080);
server.listen(port, () => {
  console.log('reference chat listening on port ' + port);
});
